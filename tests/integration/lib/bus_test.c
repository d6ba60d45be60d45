/* Integration tests of lib/bus.c against a real nats-server with JetStream.
 *
 * The server's URL comes from ENGAGE_NATS_URL (scripts/test.sh starts the server). Criterion
 * runs each test in its own forked process, in parallel, and a server may outlive one run, so
 * every subject, stream and durable name carries a prefix unique to the test process. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engage/bus.h"

#define WAIT_MS 5000

static eg_bus_t *bus;
static char uniq[64];

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

/* "<prefix>_<uniq>": a name (subject token, stream, durable) no other test or run uses. */
static void name(char *out, size_t outlen, const char *prefix)
{
    snprintf(out, outlen, "%s_%s", prefix, uniq);
}

static void setup(void)
{
    const char *url = getenv("ENGAGE_NATS_URL");
    struct timespec ts;

    cr_assert_not_null(url, "ENGAGE_NATS_URL is not set: start nats-server -js and export its "
                            "URL (scripts/test.sh does)");
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(uniq, sizeof(uniq), "%ld_%ld_%ld", (long)getpid(), (long)ts.tv_sec, ts.tv_nsec);
    cr_assert_eq(eg_bus_open(&bus, url, "bus-test", 5000), EG_OK, "cannot connect to %s", url);
}

static void teardown(void)
{
    eg_bus_close(bus);
    bus = NULL;
    eg_bus_shutdown();
}

TestSuite(bus, .init = setup, .fini = teardown, .timeout = 60);

/* ---- core NATS ---- */

/* Answers "<corr id or ->|<payload>", so the requester sees what the responder received. */
static void echo_handler(eg_bus_t *b, eg_bus_msg_t *msg, void *arg)
{
    const char *corr = eg_bus_msg_corr_id(msg);
    char out[256];
    int n;

    (void)arg;
    n = snprintf(out, sizeof(out), "%s|%.*s", corr != NULL ? corr : "-", (int)eg_bus_msg_len(msg),
                 (const char *)eg_bus_msg_data(msg));
    eg_bus_respond(b, msg, out, (size_t)n);
}

static void request_str(const char *subject, const char *data, const char *corr, char *out,
                        size_t outlen)
{
    void *reply = NULL;
    size_t reply_len = 0;
    eg_status_t st;

    st = eg_bus_request(bus, subject, data, strlen(data), corr, 2000, &reply, &reply_len);
    cr_assert_eq(st, EG_OK, "request failed: %s", eg_status_str(st));
    cr_assert_lt(reply_len, outlen);
    memcpy(out, reply, reply_len);
    out[reply_len] = '\0';
    free(reply);
}

Test(bus, request_reply_carries_corr_id)
{
    char subject[128];
    char got[256];

    name(subject, sizeof(subject), "test.echo");
    cr_assert(eg_bus_connected(bus));
    cr_assert_eq(eg_bus_subscribe(bus, subject, NULL, echo_handler, NULL), EG_OK);

    request_str(subject, "hello", "corr-123", got, sizeof(got));
    cr_assert_str_eq(got, "corr-123|hello");

    request_str(subject, "no corr", NULL, got, sizeof(got));
    cr_assert_str_eq(got, "-|no corr");
}

Test(bus, no_responders_is_unavailable_quickly)
{
    char subject[128];
    void *reply = NULL;
    size_t reply_len = 0;
    int64_t start;
    eg_status_t st;

    name(subject, sizeof(subject), "test.nobody");
    start = now_ms();
    st = eg_bus_request(bus, subject, "x", 1, "c", 5000, &reply, &reply_len);
    cr_assert_eq(st, EG_EUNAVAIL, "got %s", eg_status_str(st));
    cr_assert_lt(now_ms() - start, 1000, "no-responders took %lld ms",
                 (long long)(now_ms() - start));
    cr_assert_null(reply);
}

static void silent_handler(eg_bus_t *b, eg_bus_msg_t *msg, void *arg)
{
    (void)b;
    (void)msg;
    atomic_fetch_add((atomic_int *)arg, 1);
}

Test(bus, request_without_answer_times_out)
{
    char subject[128];
    atomic_int seen = 0;
    void *reply = NULL;
    size_t reply_len = 0;
    int64_t start;
    int64_t took;
    eg_status_t st;

    name(subject, sizeof(subject), "test.silent");
    cr_assert_eq(eg_bus_subscribe(bus, subject, NULL, silent_handler, &seen), EG_OK);
    start = now_ms();
    st = eg_bus_request(bus, subject, "x", 1, NULL, 300, &reply, &reply_len);
    took = now_ms() - start;
    cr_assert_eq(st, EG_ETIMEOUT, "got %s", eg_status_str(st));
    cr_assert_geq(took, 250, "timed out after only %lld ms", (long long)took);
    cr_assert_lt(took, 3000, "timed out after %lld ms", (long long)took);
    cr_assert_eq(atomic_load(&seen), 1, "the subscriber saw the request %d times",
                 atomic_load(&seen));
}

struct respond_probe {
    atomic_int calls;
    atomic_int status;
    char corr[64];
};

static void respond_probe_handler(eg_bus_t *b, eg_bus_msg_t *msg, void *arg)
{
    struct respond_probe *p = arg;
    const char *corr = eg_bus_msg_corr_id(msg);

    snprintf(p->corr, sizeof(p->corr), "%s", corr != NULL ? corr : "");
    atomic_store(&p->status, (int)eg_bus_respond(b, msg, "r", 1));
    atomic_fetch_add(&p->calls, 1);
}

Test(bus, publish_delivers_corr_id_and_respond_needs_reply_subject)
{
    char subject[128];
    struct respond_probe p = {.calls = 0, .status = -1, .corr = ""};
    int64_t until;

    name(subject, sizeof(subject), "test.pub");
    cr_assert_eq(eg_bus_subscribe(bus, subject, NULL, respond_probe_handler, &p), EG_OK);
    cr_assert_eq(eg_bus_publish(bus, subject, "m", 1, "corr-pub"), EG_OK);
    until = now_ms() + WAIT_MS;
    while (atomic_load(&p.calls) == 0 && now_ms() < until) {
        sleep_ms(10);
    }
    cr_assert_eq(atomic_load(&p.calls), 1);
    cr_assert_str_eq(p.corr, "corr-pub");
    cr_assert_eq(atomic_load(&p.status), EG_EINVAL, "respond to a publish gave %s",
                 eg_status_str((eg_status_t)atomic_load(&p.status)));
}

Test(bus, queue_group_splits_messages)
{
    enum { N = 200 };
    char subject[128];
    atomic_int a = 0;
    atomic_int b = 0;
    int64_t until;
    int i;

    name(subject, sizeof(subject), "test.queue");
    cr_assert_eq(eg_bus_subscribe(bus, subject, "workers", silent_handler, &a), EG_OK);
    cr_assert_eq(eg_bus_subscribe(bus, subject, "workers", silent_handler, &b), EG_OK);
    for (i = 0; i < N; i++) {
        cr_assert_eq(eg_bus_publish(bus, subject, &i, sizeof(i), NULL), EG_OK);
    }
    until = now_ms() + WAIT_MS;
    while (atomic_load(&a) + atomic_load(&b) < N && now_ms() < until) {
        sleep_ms(10);
    }
    /* Give a wrong implementation (both get everything) time to show extra deliveries. */
    sleep_ms(300);
    cr_assert_eq(atomic_load(&a) + atomic_load(&b), N, "a=%d b=%d", atomic_load(&a),
                 atomic_load(&b));
    cr_assert_gt(atomic_load(&a), 0);
    cr_assert_gt(atomic_load(&b), 0);
}

Test(bus, open_fails_when_no_server)
{
    eg_bus_t *other = NULL;
    int64_t start = now_ms();

    /* Port 1 on loopback: nothing listens there. */
    cr_assert_eq(eg_bus_open(&other, "nats://127.0.0.1:1", "bus-test", 500), EG_EUNAVAIL);
    cr_assert_null(other);
    cr_assert_lt(now_ms() - start, 3000);
    eg_bus_close(NULL);
}

Test(bus, open_accepts_a_url_list)
{
    char urls[512];
    eg_bus_t *other = NULL;

    /* The first server is down; the bus must go on to the second. */
    snprintf(urls, sizeof(urls), "nats://127.0.0.1:1,%s", getenv("ENGAGE_NATS_URL"));
    cr_assert_eq(eg_bus_open(&other, urls, "bus-test-list", 5000), EG_OK);
    cr_assert(eg_bus_connected(other));
    eg_bus_close(other);
}

/* ---- JetStream ---- */

/* A stream "S_<uniq>" on subjects "js_<uniq>.>" with a 60 s max age (tests leave it behind). */
static void make_stream(char *stream, size_t slen, char *base, size_t blen)
{
    char wildcard[160];
    const char *subjects[1];

    name(stream, slen, "S");
    name(base, blen, "js");
    snprintf(wildcard, sizeof(wildcard), "%s.>", base);
    subjects[0] = wildcard;
    cr_assert_eq(eg_bus_js_stream_ensure(bus, stream, subjects, 1, 60, 30), EG_OK);
}

static void js_publish(const char *subject, const char *data, const char *msg_id, bool *dup)
{
    eg_status_t st;

    st = eg_bus_js_publish(bus, subject, data, strlen(data), msg_id, "corr-js", 2000, dup);
    cr_assert_eq(st, EG_OK, "js publish: %s", eg_status_str(st));
}

/* Fetch exactly one message, waiting up to timeout_ms. */
static eg_bus_jsmsg_t *fetch_one(eg_bus_consumer_t *c, int timeout_ms)
{
    eg_bus_jsmsg_t *msgs[1] = {NULL};
    int count = -1;
    eg_status_t st;

    st = eg_bus_js_fetch(c, 1, timeout_ms, msgs, &count);
    cr_assert_eq(st, EG_OK, "fetch: %s", eg_status_str(st));
    cr_assert_eq(count, 1);
    return msgs[0];
}

static void expect_nothing(eg_bus_consumer_t *c, int timeout_ms)
{
    eg_bus_jsmsg_t *msgs[4] = {NULL};
    int count = -1;
    eg_status_t st;

    st = eg_bus_js_fetch(c, 4, timeout_ms, msgs, &count);
    cr_assert_eq(st, EG_ETIMEOUT, "expected no message, got %s with %d (first seq %llu)",
                 eg_status_str(st), count,
                 count > 0 ? (unsigned long long)eg_bus_jsmsg_seq(msgs[0]) : 0ULL);
    cr_assert_eq(count, 0);
}

Test(bus, js_publish_same_msg_id_is_stored_once)
{
    char stream[128];
    char base[128];
    char subject[160];
    char durable[128];
    eg_bus_consumer_t *c = NULL;
    eg_bus_jsmsg_t *msgs[10] = {NULL};
    int count = -1;
    bool dup = true;

    make_stream(stream, sizeof(stream), base, sizeof(base));
    snprintf(subject, sizeof(subject), "%s.events", base);

    js_publish(subject, "first", "evt-1", &dup);
    cr_assert_not(dup, "the first publish was flagged duplicate");
    js_publish(subject, "second copy", "evt-1", &dup);
    cr_assert(dup, "the second publish with the same id was not flagged duplicate");

    name(durable, sizeof(durable), "dedupe");
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, NULL, 5, &c), EG_OK);
    cr_assert_eq(eg_bus_js_fetch(c, 10, 1000, msgs, &count), EG_OK);
    cr_assert_eq(count, 1, "the stream holds %d messages", count);
    cr_assert_eq(eg_bus_jsmsg_len(msgs[0]), strlen("first"));
    cr_assert_arr_eq(eg_bus_jsmsg_data(msgs[0]), "first", strlen("first"));
    cr_assert_str_eq(eg_bus_jsmsg_subject(msgs[0]), subject);
    cr_assert_str_eq(eg_bus_jsmsg_id(msgs[0]), "evt-1");
    cr_assert_str_eq(eg_bus_jsmsg_corr_id(msgs[0]), "corr-js");
    cr_assert_eq(eg_bus_jsmsg_deliveries(msgs[0]), 1);
    cr_assert_eq(eg_bus_jsmsg_seq(msgs[0]), 1);
    cr_assert_eq(eg_bus_jsmsg_ack(msgs[0]), EG_OK);
    eg_bus_jsmsg_free(msgs[0]);

    js_publish(subject, "other", "evt-2", &dup);
    cr_assert_not(dup);
    msgs[0] = fetch_one(c, 1000);
    cr_assert_str_eq(eg_bus_jsmsg_id(msgs[0]), "evt-2");
    cr_assert_eq(eg_bus_jsmsg_seq(msgs[0]), 2);
    cr_assert_eq(eg_bus_jsmsg_ack(msgs[0]), EG_OK);
    eg_bus_jsmsg_free(msgs[0]);
    eg_bus_consumer_close(c);
}

Test(bus, js_publish_without_stream_is_unavailable)
{
    char subject[128];
    bool dup = true;

    name(subject, sizeof(subject), "nostream");
    cr_assert_eq(eg_bus_js_publish(bus, subject, "x", 1, "id", NULL, 2000, &dup), EG_EUNAVAIL);
    cr_assert_not(dup);
}

Test(bus, fetch_ack_and_nak_redelivers)
{
    char stream[128];
    char base[128];
    char subject[160];
    char durable[128];
    eg_bus_consumer_t *c = NULL;
    eg_bus_jsmsg_t *m;
    uint64_t seq;
    int64_t start;

    make_stream(stream, sizeof(stream), base, sizeof(base));
    snprintf(subject, sizeof(subject), "%s.work", base);
    name(durable, sizeof(durable), "worker");
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, subject, 1, &c), EG_OK);
    expect_nothing(c, 200);

    js_publish(subject, "job", "job-1", NULL);
    m = fetch_one(c, 2000);
    seq = eg_bus_jsmsg_seq(m);
    cr_assert_eq(eg_bus_jsmsg_deliveries(m), 1);
    cr_assert_eq(eg_bus_jsmsg_nak(m, 0), EG_OK);
    eg_bus_jsmsg_free(m);

    m = fetch_one(c, 2000);
    cr_assert_eq(eg_bus_jsmsg_seq(m), seq, "a different message came back");
    cr_assert_eq(eg_bus_jsmsg_deliveries(m), 2);

    /* A delayed nak holds the message back for the delay. */
    start = now_ms();
    cr_assert_eq(eg_bus_jsmsg_nak(m, 700), EG_OK);
    eg_bus_jsmsg_free(m);
    expect_nothing(c, 300);
    m = fetch_one(c, 3000);
    cr_assert_geq(now_ms() - start, 600, "redelivered after %lld ms",
                  (long long)(now_ms() - start));
    cr_assert_eq(eg_bus_jsmsg_seq(m), seq);
    cr_assert_eq(eg_bus_jsmsg_deliveries(m), 3);

    /* Acked: never again, not even after the 1 s ack wait. */
    cr_assert_eq(eg_bus_jsmsg_ack(m), EG_OK);
    eg_bus_jsmsg_free(m);
    expect_nothing(c, 1500);
    eg_bus_consumer_close(c);
}

Test(bus, unacked_message_redelivered_after_ack_wait)
{
    char stream[128];
    char base[128];
    char subject[160];
    char durable[128];
    eg_bus_consumer_t *c = NULL;
    eg_bus_jsmsg_t *m;
    uint64_t seq;

    make_stream(stream, sizeof(stream), base, sizeof(base));
    snprintf(subject, sizeof(subject), "%s.work", base);
    name(durable, sizeof(durable), "slow");
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, subject, 1, &c), EG_OK);

    js_publish(subject, "job", "job-1", NULL);
    m = fetch_one(c, 2000);
    seq = eg_bus_jsmsg_seq(m);
    cr_assert_eq(eg_bus_jsmsg_deliveries(m), 1);
    eg_bus_jsmsg_free(m); /* neither acked nor nakked, as after a crash */

    expect_nothing(c, 300);
    m = fetch_one(c, 4000);
    cr_assert_eq(eg_bus_jsmsg_seq(m), seq);
    cr_assert_eq(eg_bus_jsmsg_deliveries(m), 2);
    cr_assert_eq(eg_bus_jsmsg_ack(m), EG_OK);
    eg_bus_jsmsg_free(m);
    eg_bus_consumer_close(c);
}

Test(bus, in_progress_holds_and_term_drops)
{
    char stream[128];
    char base[128];
    char subject[160];
    char durable[128];
    eg_bus_consumer_t *c = NULL;
    eg_bus_jsmsg_t *m;

    make_stream(stream, sizeof(stream), base, sizeof(base));
    snprintf(subject, sizeof(subject), "%s.work", base);
    name(durable, sizeof(durable), "long");
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, subject, 1, &c), EG_OK);

    js_publish(subject, "job", "job-1", NULL);
    m = fetch_one(c, 2000);
    /* Without the in-progress signals the 1 s ack wait would expire during these 1.5 s. */
    sleep_ms(600);
    cr_assert_eq(eg_bus_jsmsg_in_progress(m), EG_OK);
    sleep_ms(600);
    cr_assert_eq(eg_bus_jsmsg_in_progress(m), EG_OK);
    expect_nothing(c, 300);

    cr_assert_eq(eg_bus_jsmsg_term(m), EG_OK);
    eg_bus_jsmsg_free(m);
    expect_nothing(c, 1500);
    eg_bus_consumer_close(c);
}

Test(bus, durable_consumer_keeps_position_across_close)
{
    char stream[128];
    char base[128];
    char subject[160];
    char durable[128];
    eg_bus_consumer_t *c = NULL;
    eg_bus_jsmsg_t *m;

    make_stream(stream, sizeof(stream), base, sizeof(base));
    snprintf(subject, sizeof(subject), "%s.work", base);
    name(durable, sizeof(durable), "durable");
    js_publish(subject, "one", "m-1", NULL);
    js_publish(subject, "two", "m-2", NULL);

    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, subject, 5, &c), EG_OK);
    m = fetch_one(c, 2000);
    cr_assert_str_eq(eg_bus_jsmsg_id(m), "m-1");
    cr_assert_eq(eg_bus_jsmsg_ack(m), EG_OK);
    eg_bus_jsmsg_free(m);
    eg_bus_consumer_close(c);

    /* Reopening (even with another ack wait) resumes after the acked message. */
    c = NULL;
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, subject, 3, &c), EG_OK);
    m = fetch_one(c, 2000);
    cr_assert_str_eq(eg_bus_jsmsg_id(m), "m-2");
    cr_assert_eq(eg_bus_jsmsg_deliveries(m), 1);
    cr_assert_eq(eg_bus_jsmsg_ack(m), EG_OK);
    eg_bus_jsmsg_free(m);
    expect_nothing(c, 300);
    eg_bus_consumer_close(c);
}

Test(bus, consumer_filter_subject_selects_messages)
{
    char stream[128];
    char base[128];
    char sub_a[160];
    char sub_b[160];
    char durable[128];
    eg_bus_consumer_t *only_a = NULL;
    eg_bus_consumer_t *all = NULL;
    eg_bus_jsmsg_t *msgs[10] = {NULL};
    int count = -1;
    int i;

    make_stream(stream, sizeof(stream), base, sizeof(base));
    snprintf(sub_a, sizeof(sub_a), "%s.a", base);
    snprintf(sub_b, sizeof(sub_b), "%s.b", base);
    js_publish(sub_b, "b", "b-1", NULL);
    js_publish(sub_a, "a", "a-1", NULL);

    name(durable, sizeof(durable), "only_a");
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, sub_a, 5, &only_a), EG_OK);
    cr_assert_eq(eg_bus_js_fetch(only_a, 10, 1000, msgs, &count), EG_OK);
    cr_assert_eq(count, 1);
    cr_assert_str_eq(eg_bus_jsmsg_subject(msgs[0]), sub_a);
    cr_assert_eq(eg_bus_jsmsg_ack(msgs[0]), EG_OK);
    eg_bus_jsmsg_free(msgs[0]);
    eg_bus_consumer_close(only_a);

    name(durable, sizeof(durable), "all");
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, NULL, 5, &all), EG_OK);
    count = 0;
    while (count < 2) {
        int got = 0;

        cr_assert_eq(eg_bus_js_fetch(all, 10 - count, 1000, msgs + count, &got), EG_OK);
        count += got;
    }
    cr_assert_eq(count, 2);
    cr_assert_str_eq(eg_bus_jsmsg_subject(msgs[0]), sub_b);
    cr_assert_str_eq(eg_bus_jsmsg_subject(msgs[1]), sub_a);
    for (i = 0; i < count; i++) {
        cr_assert_eq(eg_bus_jsmsg_ack(msgs[i]), EG_OK);
        eg_bus_jsmsg_free(msgs[i]);
    }
    eg_bus_consumer_close(all);
}

Test(bus, consumer_on_missing_stream_is_not_found)
{
    char stream[128];
    eg_bus_consumer_t *c = (eg_bus_consumer_t *)&c;

    name(stream, sizeof(stream), "MISSING");
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, "d", NULL, 5, &c), EG_ENOTFOUND);
    cr_assert_null(c);
}

Test(bus, stream_ensure_is_idempotent_and_updates)
{
    char stream[128];
    char base[128];
    char one[160];
    char two[160];
    const char *subjects[2];
    bool dup = true;

    name(stream, sizeof(stream), "S");
    name(base, sizeof(base), "ens");
    snprintf(one, sizeof(one), "%s.one", base);
    snprintf(two, sizeof(two), "%s.two", base);
    subjects[0] = one;
    subjects[1] = two;

    cr_assert_eq(eg_bus_js_stream_ensure(bus, stream, subjects, 1, 0, 60), EG_OK);
    cr_assert_eq(eg_bus_js_stream_ensure(bus, stream, subjects, 1, 0, 60), EG_OK);
    js_publish(one, "x", "one-1", &dup);
    cr_assert_not(dup);
    cr_assert_eq(eg_bus_js_publish(bus, two, "y", 1, "two-1", NULL, 2000, NULL), EG_EUNAVAIL,
                 "a subject outside the stream was accepted");

    /* Other settings for the same stream: it is updated, and keeps what it stored. */
    cr_assert_eq(eg_bus_js_stream_ensure(bus, stream, subjects, 2, 3600, 120), EG_OK);
    js_publish(two, "y", "two-1", &dup);
    cr_assert_not(dup);
    js_publish(one, "x", "one-1", &dup);
    cr_assert(dup, "the update lost the stream's duplicate tracking");
    cr_assert_eq(eg_bus_js_stream_ensure(bus, stream, subjects, 2, 3600, 120), EG_OK);
}
