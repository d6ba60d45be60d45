/* Fault test of lib/bus.c and lib/jetstream*.c on a real 3-node NATS JetStream cluster.
 *
 * tests/ha/nats_cluster_test.sh starts the cluster (scripts/stack_nats.sh) and runs this with
 * ENGAGE_NATS_URL (all three servers), ENGAGE_JS_REPLICAS=3, ENGAGE_HA_DIR (the cluster's run
 * directory) and ENGAGE_REPO_ROOT. Nodes are killed (SIGKILL) and started again through the
 * functions of scripts/stack_nats.sh, at known points of the test:
 *
 * - a bus opens although the first URL of its list is dead;
 * - ENGAGE_EVENTS is created with 3 replicas;
 * - numbered events with message ids go through eg_bus_js_publish while the stream leader is
 *   killed after the first 60, and through the batch publisher right after the next leader is
 *   killed; every publish must succeed within its timeout;
 * - a request/reply round trip works after the server the requester is connected to is killed,
 *   and after the responder's server is killed (its queue subscription is renewed elsewhere);
 * - a durable consumer reads the events back while its leader is killed: every event is in the
 *   stream exactly once (no loss, no duplicate), and no fetch fails.
 * It prints the longest publish stall it saw. */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engage/bus.h"
#include "engage/events.h"
#include "engage/subjects.h"

enum { SYNC_N = 200, BATCH_N = 200, TOTAL = SYNC_N + BATCH_N, KILL_AT = 60 };
#define PUBLISH_TIMEOUT_MS 15000
#define REQUEST_TIMEOUT_MS 10000

static char uniq[64];
static char subject[128];

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *env(const char *name)
{
    const char *v = getenv(name);

    cr_assert(v != NULL && *v, "%s is not set: run tests/ha/nats_cluster_test.sh", name);
    return v;
}

/* Run one function of scripts/stack_nats.sh on the cluster's directory with args; its last
 * line of output into out (when not NULL). Returns the exit status. */
static int ctl(char *out, size_t outlen, const char *fmt, ...)
{
    char args[256], cmd[1024], line[256];
    va_list ap;
    FILE *p;
    int rc;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "bash -c 'source \"%s/scripts/stack_nats.sh\" && %s' 2>&1",
             env("ENGAGE_REPO_ROOT"), args);
    if (out != NULL) {
        out[0] = '\0';
    }
    p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    while (fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (out != NULL) {
            size_t n = strlen(line) < outlen ? strlen(line) : outlen - 1;

            memcpy(out, line, n);
            out[n] = '\0';
        } else {
            fprintf(stderr, "%s\n", line);
        }
    }
    rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int stream_leader(void)
{
    char out[64];

    cr_assert_eq(
        ctl(out, sizeof out, "nats_stream_leader %s %s", env("ENGAGE_HA_DIR"), EG_STREAM_EVENTS), 0,
        "no leader for %s: %s", EG_STREAM_EVENTS, out);
    return atoi(out);
}

/* Until stream is held by n servers (10 s at most). */
static void wait_replicas(const char *stream, int n)
{
    char out[64];
    int64_t t0 = now_ms();

    do {
        ctl(out, sizeof out, "nats_stream_replicas %s %s", env("ENGAGE_HA_DIR"), stream);
    } while (atoi(out) != n && now_ms() - t0 < 10000);
    cr_assert_eq(atoi(out), n, "%s is on %s servers, not %d", stream, out, n);
}

/* A node is killed only once every replica of ENGAGE_EVENTS has caught up (as an operator
 * waits before the next node of a rolling restart): nats-server 2.9 can lose, on a replica
 * still catching up that then becomes leader, what the others hold. */
static void wait_current(void)
{
    int64_t t0 = now_ms();

    while (ctl(NULL, 0, "nats_stream_current %s %s", env("ENGAGE_HA_DIR"), EG_STREAM_EVENTS) != 0) {
        cr_assert_lt(now_ms() - t0, 15000, "the replicas of %s did not catch up in 15 s",
                     EG_STREAM_EVENTS);
        struct timespec pause = {0, 100 * 1000000L};
        nanosleep(&pause, NULL);
    }
}

static void node_kill(int k, const char *why)
{
    wait_current();
    fprintf(stderr, "nats_cluster: kill -9 n%d (%s)\n", k, why);
    cr_assert_eq(ctl(NULL, 0, "nats_node_kill %s %d", env("ENGAGE_HA_DIR"), k), 0);
}

static void node_start(int k)
{
    cr_assert_eq(ctl(NULL, 0, "nats_node_start %s %d", env("ENGAGE_HA_DIR"), k), 0,
                 "n%d did not start again", k);
}

/* K of the node the bus is connected to (its client port among the cluster's). */
static int node_of(eg_bus_t *b)
{
    char url[256], node[128];

    cr_assert_eq(eg_bus_server_url(b, url, sizeof url), EG_OK);
    for (int k = 1; k <= 3; k++) {
        cr_assert_eq(ctl(node, sizeof node, "nats_node_url %s %d", env("ENGAGE_HA_DIR"), k), 0);
        if (strcmp(node, url) == 0) {
            return k;
        }
    }
    cr_assert_fail("connected to %s, which is no node of the cluster", url);
    return 0;
}

static void echo(eg_bus_t *b, eg_bus_msg_t *msg, void *arg)
{
    (void)arg;
    eg_bus_respond(b, msg, eg_bus_msg_data(msg), eg_bus_msg_len(msg));
}

/* One round trip on the echo subject, asked the way the api asks the scheduler
 * (services/api/sched_client.c): tries of 1 s, again on "no responders" or no answer, for up
 * to REQUEST_TIMEOUT_MS (echo is harmless to repeat). Returns how long it took (ms). */
static int64_t round_trip(eg_bus_t *b, const char *echo_subject, const char *what)
{
    void *reply = NULL;
    size_t reply_len = 0;
    int64_t t0 = now_ms();
    int tries = 0;
    eg_status_t st;

    do {
        tries++;
        st = eg_bus_request(b, echo_subject, what, strlen(what), NULL, 1000, &reply, &reply_len);
        if (st != EG_OK) {
            struct timespec pause = {0, 50 * 1000000L};
            nanosleep(&pause, NULL);
        }
    } while ((st == EG_EUNAVAIL || st == EG_ETIMEOUT) && now_ms() - t0 < REQUEST_TIMEOUT_MS);
    cr_assert_eq(st, EG_OK, "request %s: %s after %d tries", what, eg_status_str(st), tries);
    cr_assert_eq(reply_len, strlen(what));
    cr_assert_eq(memcmp(reply, what, reply_len), 0);
    free(reply);
    if (tries > 1) {
        fprintf(stderr, "nats_cluster: request %s took %d tries\n", what, tries);
    }
    return now_ms() - t0;
}

static void msg_id(char *out, size_t outlen, int i)
{
    snprintf(out, outlen, "ha-%s-%d", uniq, i);
}

Test(nats_cluster, publishes_and_requests_ride_out_a_dead_node, .timeout = 150)
{
    const char *url = env("ENGAGE_NATS_URL");
    eg_bus_t *bus = NULL, *other = NULL, *responder = NULL;
    eg_bus_js_batch_t *batch = NULL;
    eg_bus_consumer_t *consumer = NULL;
    char list[1024], id[128], echo_subject[160], durable[96], out[64];
    int64_t stall = 0, batch_stall, t0;
    static bool acked[BATCH_N];
    static int seen[TOTAL];
    static uint64_t seq_of[TOTAL];
    struct timespec ts;
    int leader, k, dups = 0, got = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(uniq, sizeof uniq, "%ld%ld", (long)getpid(), (long)ts.tv_nsec);
    snprintf(subject, sizeof subject, "%sha%s", EG_SUBJ_EVENTS_PREFIX, uniq);
    snprintf(echo_subject, sizeof echo_subject, "engage.ha.%s.echo", uniq);

    /* A dead first URL (nothing listens on port 1) does not keep a service from starting. */
    snprintf(list, sizeof list, "nats://127.0.0.1:1,%s", url);
    t0 = now_ms();
    cr_assert_eq(eg_bus_open(&other, list, "ha-first-dead", 5000), EG_OK,
                 "no connection with a dead first URL in %s", list);
    fprintf(stderr, "nats_cluster: connected past a dead first URL in %lld ms\n",
            (long long)(now_ms() - t0));
    eg_bus_close(other);

    cr_assert_eq(eg_bus_open(&bus, url, "ha-publisher", 5000), EG_OK);
    cr_assert_eq(eg_bus_open(&responder, url, "ha-responder", 5000), EG_OK);
    cr_assert_eq(eg_bus_subscribe(responder, echo_subject, "ha-echo", echo, NULL), EG_OK);
    round_trip(bus, echo_subject, "before");

    /* A stream made with one replica, as a single server's deployment would have left it, is
     * scaled to three when asked again. */
    char scale[96], scale_subject[160];
    const char *scale_subjects[] = {scale_subject};
    snprintf(scale, sizeof scale, "HA_SCALE_%s", uniq);
    snprintf(scale_subject, sizeof scale_subject, "engage.ha.%s.scale.>", uniq);
    cr_assert_eq(eg_bus_js_stream_ensure(bus, scale, scale_subjects, 1, 60, 60), EG_OK);
    cr_assert_eq(eg_bus_js_stream_ensure_replicas(bus, scale, scale_subjects, 1, 60, 60, 3), EG_OK);
    wait_replicas(scale, 3);

    /* The events stream, with the replicas ENGAGE_JS_REPLICAS asks for. */
    cr_assert_eq(eg_events_replicas(), 3, "ENGAGE_JS_REPLICAS=3 is not set");
    cr_assert_eq(eg_events_stream_ensure(bus), EG_OK);
    wait_replicas(EG_STREAM_EVENTS, 3);

    /* Synchronous publishes; the stream leader dies after the first KILL_AT. */
    leader = stream_leader();
    for (int i = 0; i < SYNC_N; i++) {
        if (i == KILL_AT) {
            node_kill(leader, "the stream leader, during synchronous publishes");
        }
        msg_id(id, sizeof id, i);
        t0 = now_ms();
        eg_status_t st =
            eg_bus_js_publish(bus, subject, id, strlen(id), id, NULL, PUBLISH_TIMEOUT_MS, NULL);
        int64_t took = now_ms() - t0;
        cr_assert_eq(st, EG_OK, "publish %d failed after %lld ms: %s", i, (long long)took,
                     eg_status_str(st));
        if (took > stall) {
            stall = took;
        }
    }
    node_start(leader);

    /* A batch sent right after the (new) stream leader died. */
    leader = stream_leader();
    cr_assert_eq(eg_bus_js_batch_open(bus, &batch), EG_OK);
    node_kill(leader, "the stream leader, before a batch");
    t0 = now_ms();
    for (int i = 0; i < BATCH_N; i++) {
        msg_id(id, sizeof id, SYNC_N + i);
        /* A failure here (the connection is moving) is sent again by the wait. */
        eg_bus_js_batch_add(batch, subject, id, strlen(id), id, NULL);
    }
    eg_status_t bst = eg_bus_js_batch_wait(batch, PUBLISH_TIMEOUT_MS, acked, BATCH_N);
    batch_stall = now_ms() - t0;
    cr_assert_eq(bst, EG_OK, "the batch was not stored after %lld ms: %s", (long long)batch_stall,
                 eg_status_str(bst));
    for (int i = 0; i < BATCH_N; i++) {
        cr_assert(acked[i], "batch message %d not acknowledged", i);
    }
    eg_bus_js_batch_close(batch);
    node_start(leader);

    /* The requester's server dies: it reconnects to another and the request goes through. */
    k = node_of(bus);
    int responder_k = node_of(responder);
    node_kill(k, responder_k == k ? "the server of requester and responder"
                                  : "the requester's server");
    int64_t rt = round_trip(bus, echo_subject, "after the requester's server died");
    fprintf(stderr, "nats_cluster: request after n%d died answered in %lld ms (now on n%d)\n", k,
            (long long)rt, node_of(bus));
    node_start(k);
    if (responder_k != k) {
        /* The responder's server dies: its queue subscription is renewed on another. */
        node_kill(responder_k, "the responder's server");
        rt = round_trip(bus, echo_subject, "after the responder's server died");
        fprintf(stderr, "nats_cluster: request after n%d died answered in %lld ms\n", responder_k,
                (long long)rt);
        node_start(responder_k);
    }

    /* Every event exactly once, read back while the consumer's leader dies. */
    snprintf(durable, sizeof durable, "ha_%s", uniq);
    cr_assert_eq(eg_bus_js_consumer_open(bus, EG_STREAM_EVENTS, durable, subject, 30, &consumer),
                 EG_OK);
    cr_assert_eq(ctl(out, sizeof out, "nats_consumer_leader %s %s %s", env("ENGAGE_HA_DIR"),
                     EG_STREAM_EVENTS, durable),
                 0, "no leader for consumer %s: %s", durable, out);
    node_kill(atoi(out), "the consumer's leader, before reading back");
    int64_t read_until = now_ms() + 30000;
    while (got < TOTAL && now_ms() < read_until) {
        eg_bus_jsmsg_t *msgs[64];
        int count = 0;
        eg_status_t st = eg_bus_js_fetch(consumer, 64, 2000, msgs, &count);

        cr_assert(st == EG_OK || st == EG_ETIMEOUT, "fetch failed: %s", eg_status_str(st));
        for (int m = 0; m < count; m++) {
            const char *mid = eg_bus_jsmsg_id(msgs[m]);
            const char *dash = mid != NULL ? strrchr(mid, '-') : NULL;
            int n = dash != NULL ? atoi(dash + 1) : -1;

            cr_assert(n >= 0 && n < TOTAL, "unexpected message id %s", mid ? mid : "(none)");
            /* A redelivery (an ack lost in the election) is the same stream message again; a
             * duplicate is another stream message with the same id. */
            uint64_t seq = eg_bus_jsmsg_seq(msgs[m]);
            if (seen[n] == 0) {
                seen[n] = 1;
                seq_of[n] = seq;
                got++;
            } else if (seq_of[n] != seq) {
                seen[n]++;
                dups++;
            }
            eg_bus_jsmsg_ack(msgs[m]);
            eg_bus_jsmsg_free(msgs[m]);
        }
    }
    node_start(atoi(out));
    for (int i = 0; i < TOTAL; i++) {
        cr_expect_eq(seen[i], 1, "event %d is in the stream %d times", i, seen[i]);
    }
    fprintf(stderr,
            "nats_cluster: sent=%d stored=%d lost=%d duplicates=%d longest_publish_stall_s=%.2f "
            "batch_stall_s=%.2f\n",
            TOTAL, got, TOTAL - got, dups, (double)stall / 1000.0, (double)batch_stall / 1000.0);
    cr_assert_eq(got, TOTAL);
    cr_assert_eq(dups, 0);

    eg_bus_consumer_close(consumer);
    eg_bus_close(responder);
    eg_bus_close(bus);
    eg_bus_shutdown();
}
