/* The voice-sim loop (see main.c for the outcome table and the threading model).
 *
 * One iteration: report every progress step that is due (one pipelined XADD per step), now and
 * then take over commands stranded on a dead consumer, then read commands through the consumer
 * group (lib/stream.c): blocking up to 50 ms when no call is in progress, otherwise without
 * blocking, followed by a sleep until the next step is due (at most 10 ms; see read_commands for
 * why).
 *
 * Commands of one read are handled as a batch: one pipeline counts every dial and cancel
 * (HINCRBY voicesim:dials / voicesim:cancels) and acknowledges every entry (XACK), and only when
 * that pipeline has succeeded are the dials scheduled and the cancels applied, in stream order.
 * Scheduling and cancelling are in memory and cannot fail, so every command is acted on exactly
 * when it is acknowledged. When the pipeline fails (Redis is down) nothing is applied: the loop
 * waits 100 ms and re-reads its pending entries from id 0, so no command is lost. A pipeline
 * that reached Redis but whose reply was lost can count a dial twice (lib/store.c resends once
 * after reconnecting); that only happens around a Redis failure.
 *
 * At start, and after any failed batch, the loop reads its own pending entries (id 0) before
 * new ones (id >): after a crash or restart the commands it had read but not acknowledged are
 * played again. Calls in progress live only in memory and are lost with the process, as a real
 * platform's calls would be.
 *
 * A step that cannot be written (Redis down) is retried after 100 ms; the steps of one call stay
 * in order because a call has one pending step at a time (calls.c). */
#include "sim.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "calls.h"
#include "command.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/store.h"
#include "engage/stream.h"
#include "engage/timeutil.h"

#define READ_COUNT 100
#define IDLE_BLOCK_MS 50
#define POLL_MS 10
#define RETRY_MS 100
#define EMIT_BATCH 128
#define CLAIM_EVERY_MS 5000
#define CLAIM_MIN_IDLE_MS 30000
#define STORE_TIMEOUT_MS 1000

struct sim {
    sim_opts_t o;
    atomic_bool stop;
    eg_store_t *store;
    eg_stream_t *commands; /* our consumer of the commands stream, over store */
    bool group_ready;
    bool redis_down; /* last Redis call failed; logged once until it answers again */
    int64_t next_claim_ms;
    calls_t calls;
    agents_t *agents;
    eg_counter_t *dials;
    eg_counter_t *cancels;
    eg_counter_t *ignored;
    eg_counter_t *redis_errors;
    eg_counter_t **progress; /* parallel to results */
    const char *const *results;
    size_t nresults;
    eg_gauge_t *in_progress;
};

sim_t *sim_new(const sim_opts_t *opts)
{
    sim_t *s = eg_xcalloc(1, sizeof(*s));
    s->o = *opts;
    atomic_init(&s->stop, false);
    s->agents = agents_new();

    eg_metrics_t *m = opts->metrics;
    s->dials = eg_metrics_counter(m, "voicesim_dials_total", "Dial commands received", NULL);
    s->cancels = eg_metrics_counter(m, "voicesim_cancels_total", "Cancel commands received", NULL);
    s->ignored = eg_metrics_counter(m, "voicesim_ignored_total",
                                    "Command entries acknowledged without action (unknown type "
                                    "or missing fields)",
                                    NULL);
    s->redis_errors = eg_metrics_counter(m, "voicesim_redis_errors_total",
                                         "Redis calls that failed and were retried", NULL);
    s->in_progress = eg_metrics_gauge(m, "voicesim_calls_in_progress",
                                      "Simulated calls with progress steps still to report", NULL);
    s->nresults = outcome_all_results(&s->results);
    s->progress = eg_xcalloc(s->nresults, sizeof(*s->progress));
    for (size_t i = 0; i < s->nresults; i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "result=\"%s\"", s->results[i]);
        s->progress[i] = eg_metrics_counter(m, "voicesim_progress_total",
                                            "call.progress entries written, by result", labels);
    }
    return s;
}

void sim_stop(sim_t *s)
{
    atomic_store(&s->stop, true);
}

void sim_free(sim_t *s)
{
    if (s == NULL) {
        return;
    }
    calls_free(&s->calls);
    agents_free(s->agents);
    eg_stream_close(s->commands);
    eg_store_close(s->store);
    free(s->progress);
    free(s);
}

static bool stopping(sim_t *s)
{
    return atomic_load(&s->stop);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A Redis call failed for a transient reason: log it the first time, count it, back off. */
static void redis_failed(sim_t *s, const char *what, eg_status_t st)
{
    if (!s->redis_down) {
        eg_log_warn("voice redis: %s failed (%s: %s); retrying every %d ms", what,
                    eg_status_str(st), s->store ? eg_store_error(s->store) : "no connection",
                    RETRY_MS);
        s->redis_down = true;
    }
    eg_counter_inc(s->redis_errors);
    sleep_ms(RETRY_MS);
}

static void redis_answered(sim_t *s)
{
    if (s->redis_down) {
        eg_log_info("voice redis answers again");
        s->redis_down = false;
    }
}

static bool connect_store(sim_t *s)
{
    /* The group starts at "$": commands written before voice-sim first ran are not played. */
    eg_stream_opts_t o = {.stream = s->o.commands_stream,
                          .group = s->o.group,
                          .consumer = s->o.consumer,
                          .start_id = "$",
                          .read_count = READ_COUNT,
                          .claim_count = READ_COUNT};
    eg_status_t st = eg_store_open(&s->store, s->o.redis_url, STORE_TIMEOUT_MS);
    if (st != EG_OK) {
        s->store = NULL;
        redis_failed(s, "connect", st);
        return false;
    }
    st = eg_stream_open(&s->commands, s->store, &o);
    if (st != EG_OK) {
        eg_log_error("cannot read %s: %s", s->o.commands_stream, eg_status_str(st));
        eg_store_close(s->store);
        s->store = NULL;
        sleep_ms(RETRY_MS);
        return false;
    }
    redis_answered(s);
    return true;
}

static bool create_group(sim_t *s)
{
    eg_status_t st = eg_stream_create_group(s->commands);

    if (st == EG_OK) {
        redis_answered(s);
        s->group_ready = true;
        eg_log_info("reading %s as consumer %s of group %s", s->o.commands_stream, s->o.consumer,
                    s->o.group);
    } else if (st == EG_EPROTO) {
        /* Not transient in principle (e.g. the key holds another type), but an operator can
         * fix it while we wait, so it is retried like an outage. */
        eg_log_error("creating group %s refused: %s", s->o.group, eg_stream_error(s->commands));
        sleep_ms(RETRY_MS);
    } else {
        redis_failed(s, "creating the consumer group", st);
    }
    return st == EG_OK;
}

static void count_progress(sim_t *s, const char *result)
{
    for (size_t i = 0; i < s->nresults; i++) {
        if (strcmp(s->results[i], result) == 0) {
            eg_counter_inc(s->progress[i]);
            return;
        }
    }
}

static void update_gauge(sim_t *s)
{
    eg_gauge_set(s->in_progress, (double)s->calls.n);
}

/* Write up to EMIT_BATCH due steps in one pipeline. Returns the number written (0 when none was
 * due) or -1 when Redis did not answer (the steps are rescheduled RETRY_MS later). */
static int emit_batch(sim_t *s)
{
    enum { ARGC = 17 };
    call_t *due[EMIT_BATCH];
    const char *argv[EMIT_BATCH][ARGC];
    const char *const *cmds[EMIT_BATCH];
    int argcs[EMIT_BATCH];
    eg_reply_t *replies[EMIT_BATCH];
    char at[EMIT_BATCH][EG_ISO_LEN + 1];
    int64_t now = eg_mono_ms();
    size_t n = 0;

    while (n < EMIT_BATCH && calls_peek(&s->calls) != NULL &&
           calls_peek(&s->calls)->due_ms <= now) {
        call_t *c = calls_pop(&s->calls);
        /* A call of a single-agent queue waits in line until its agent is free. */
        if (c->vq && !c->holds_agent && strcmp(c->steps[c->next], "AGENT_CONNECTED") == 0 &&
            !agents_take(s->agents, c))
            continue;
        due[n++] = c;
    }
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        call_t *c = due[i];
        eg_time_format_iso(eg_now_ms(), at[i]);
        const char *a[ARGC] = {"XADD",
                               s->o.events_stream,
                               "*",
                               "type",
                               "call.progress",
                               "tenant",
                               c->tenant,
                               "callback_id",
                               c->callback_id,
                               "attempt",
                               c->attempt,
                               "result",
                               c->steps[c->next],
                               "at",
                               at[i],
                               "call_id",
                               c->call_id};
        memcpy(argv[i], a, sizeof(a));
        cmds[i] = argv[i];
        argcs[i] = ARGC;
    }
    eg_status_t st = eg_store_pipeline(s->store, n, argcs, cmds, replies);
    if (st != EG_OK) {
        for (size_t i = 0; i < n; i++) {
            due[i]->due_ms = now + RETRY_MS;
            calls_push(&s->calls, due[i]);
        }
        redis_failed(s, "XADD call.progress", st);
        return -1;
    }
    redis_answered(s);
    for (size_t i = 0; i < n; i++) {
        call_t *c = due[i];
        const char *result = c->steps[c->next];
        if (replies[i] != NULL && replies[i]->type == EG_REPLY_ERROR) {
            /* Not an outage (e.g. the events key holds another type): drop the step rather
             * than retry it forever, and say so. */
            eg_log_error("XADD %s refused: %s; call.progress %s of callback %s attempt %s lost",
                         s->o.events_stream, replies[i]->str ? replies[i]->str : "?", result,
                         c->callback_id, c->attempt);
        } else {
            count_progress(s, result);
            eg_log_debug("call.progress tenant=%s callback=%s attempt=%s result=%s call_id=%s",
                         c->tenant, c->callback_id, c->attempt, result, c->call_id);
        }
        eg_reply_free(replies[i]);
        c->next++;
        if (c->holds_agent && strcmp(result, "CALL_ENDED") == 0) {
            call_t *waiting = agents_release(s->agents, c);
            if (waiting) { /* its agent is free now: it connects at once */
                waiting->due_ms = now;
                calls_push(&s->calls, waiting);
            }
        }
        if (c->next >= c->nsteps) {
            call_free(c);
            continue;
        }
        /* Keep the cadence from the planned time, but never schedule into the past. An agent
         * talks for the talk time. */
        c->due_ms += c->holds_agent ? s->o.talk_ms : s->o.step_ms;
        if (c->due_ms < now) {
            c->due_ms = now;
        }
        calls_push(&s->calls, c);
    }
    update_gauge(s);
    return (int)n;
}

/* Report everything that is due. False when Redis failed (after the back-off). */
static bool emit_due(sim_t *s)
{
    int n;
    do {
        n = emit_batch(s);
    } while (n == EMIT_BATCH && !stopping(s));
    return n >= 0;
}

static void apply_dial(sim_t *s, const command_t *c)
{
    char masked[64];
    const char *const *steps = NULL;
    char *end = NULL;
    long attempt = strtol(c->attempt, &end, 10);

    if (end == c->attempt || *end != '\0') {
        attempt = 1;
    }
    outcome_t o = outcome_for(c->phone, attempt, s->o.default_outcome);
    size_t nsteps = outcome_steps(o, &steps);
    if (nsteps == 0) { /* a lost call: counted as dialled, never reported on */
        eg_log_mask_phone(c->phone, masked, sizeof(masked));
        eg_log_info("dial tenant=%s callback=%s attempt=%s phone=%s outcome=lost (nothing will "
                    "be reported)",
                    c->tenant, c->callback_id, c->attempt, masked);
        eg_counter_inc(s->dials);
        return;
    }
    call_t *call =
        call_new(c->tenant, c->callback_id, c->attempt, steps, nsteps, eg_mono_ms() + s->o.step_ms);
    if (o == OUTCOME_AGENT_QUEUE)
        call->vq = eg_xstrdup(c->virtual_queue ? c->virtual_queue : "");
    eg_log_mask_phone(c->phone, masked, sizeof(masked));
    eg_log_info("dial tenant=%s callback=%s attempt=%s phone=%s outcome=%s call_id=%s", c->tenant,
                c->callback_id, c->attempt, masked, outcome_name(o), call->call_id);
    calls_push(&s->calls, call);
    eg_counter_inc(s->dials);
}

static void apply_cancel(sim_t *s, const command_t *c)
{
    size_t waiting = 0;
    call_t *next = agents_cancel(s->agents, c->tenant, c->callback_id, c->attempt, &waiting);
    if (next) {
        next->due_ms = eg_mono_ms();
        calls_push(&s->calls, next);
    }
    size_t dropped =
        calls_drop_callback(&s->calls, c->tenant, c->callback_id, c->attempt) + waiting;
    eg_log_info("cancel tenant=%s callback=%s attempt=%s: %s", c->tenant, c->callback_id,
                c->attempt != NULL && c->attempt[0] != '\0' ? c->attempt : "-",
                dropped > 0 ? "call in progress dropped" : "no call in progress");
    eg_counter_inc(s->cancels);
}

static void apply(sim_t *s, const command_t *c)
{
    switch (c->kind) {
    case CMD_DIAL:
        apply_dial(s, c);
        break;
    case CMD_CANCEL:
        apply_cancel(s, c);
        break;
    case CMD_INVALID:
        eg_log_warn("%s entry %s lacks tenant, callback_id or attempt; acknowledged and ignored",
                    c->type, c->id);
        eg_counter_inc(s->ignored);
        break;
    case CMD_UNKNOWN:
        eg_log_warn("entry %s has unknown command type '%.40s'; acknowledged and ignored", c->id,
                    c->type ? c->type : "");
        eg_counter_inc(s->ignored);
        break;
    case CMD_NONE:
    default:
        break;
    }
}

/* Count, acknowledge and then act on one read's entries (see the top of the file). */
static void handle_batch(sim_t *s, const eg_stream_batch_t *entries)
{
    size_t n = entries->n;
    command_t *cmds = eg_xcalloc(n, sizeof(*cmds));
    const char *(*incr)[4] = eg_xcalloc(n, sizeof(*incr));
    const char **ids = eg_xcalloc(n, sizeof(*ids));
    eg_stream_cmd_t ack = {0};
    const char *const **pipe = eg_xcalloc(n + 1, sizeof(*pipe));
    int *argcs = eg_xcalloc(n + 1, sizeof(*argcs));
    eg_reply_t **replies = eg_xcalloc(n + 1, sizeof(*replies));
    size_t np = 0, nack = 0;
    bool *valid = eg_xcalloc(n, sizeof(*valid));

    for (size_t i = 0; i < n; i++) {
        valid[i] = command_parse(&entries->entries[i], &cmds[i]);
        if (!valid[i]) {
            eg_log_warn("unreadable entry in %s skipped", s->o.commands_stream);
            continue;
        }
        ids[nack++] = cmds[i].id;
        if (cmds[i].count_key != NULL) {
            incr[i][0] = "HINCRBY";
            incr[i][1] = cmds[i].kind == CMD_DIAL ? "voicesim:dials" : "voicesim:cancels";
            incr[i][2] = cmds[i].count_key;
            incr[i][3] = "1";
            pipe[np] = incr[i];
            argcs[np] = 4;
            np++;
        }
    }
    if (nack == 0) {
        goto out;
    }
    eg_stream_cmd_ack(s->commands, ids, nack, &ack);
    pipe[np] = ack.argv;
    argcs[np] = ack.argc;
    np++;
    eg_status_t st = eg_store_pipeline(s->store, np, argcs, pipe, replies);
    if (st != EG_OK) {
        /* Nothing applied: the entries stay pending and are read again from id 0. */
        eg_stream_rewind(s->commands);
        redis_failed(s, "HINCRBY/XACK of commands", st);
        goto out;
    }
    redis_answered(s);
    for (size_t i = 0; i < np; i++) {
        if (replies[i] != NULL && replies[i]->type == EG_REPLY_ERROR) {
            eg_log_error("%s refused: %s", pipe[i][0], replies[i]->str ? replies[i]->str : "?");
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (valid[i]) {
            apply(s, &cmds[i]);
        }
    }
    update_gauge(s);
out:
    for (size_t i = 0; i < np; i++) {
        eg_reply_free(replies[i]);
    }
    for (size_t i = 0; i < n; i++) {
        command_clear(&cmds[i]);
    }
    free(valid);
    free(replies);
    free(argcs);
    free(pipe);
    eg_stream_cmd_free(&ack);
    free(ids);
    free(incr);
    free(cmds);
}

/* Wait for commands. Redis checks BLOCK timeouts only about every 100 ms (hz 10), far too
 * coarse for 20 ms steps, so a blocking read is used only while no call is in progress (a new
 * command still wakes it at once). With calls in progress the read does not block, and the loop
 * sleeps here until the next step is due, at most POLL_MS, so a new command waits at most that
 * long. A lost consumer group is created again by lib/stream.c; commands added meanwhile are not
 * seen. */
static void read_commands(sim_t *s)
{
    const call_t *next = calls_peek(&s->calls);
    bool pending = eg_stream_reading_pending(s->commands);
    bool idle = next == NULL && !pending;
    eg_stream_batch_t b = {0};
    bool got = false;

    eg_status_t st = eg_stream_read(s->commands, idle ? IDLE_BLOCK_MS : 0, &b);
    if (st == EG_EPROTO) {
        eg_log_error("reading %s refused: %s", s->o.commands_stream, eg_stream_error(s->commands));
        sleep_ms(RETRY_MS);
        goto out;
    }
    if (st != EG_OK) {
        redis_failed(s, "reading commands", st);
        goto out;
    }
    redis_answered(s);
    if (b.n > 0) {
        handle_batch(s, &b);
        got = true;
    } else if (pending) {
        got = true; /* every pending entry has been handled */
    }
    next = calls_peek(&s->calls);
    if (!got && !idle && next != NULL) {
        int64_t wait = next->due_ms - eg_mono_ms();
        if (wait > POLL_MS) {
            wait = POLL_MS;
        }
        if (wait > 0) {
            sleep_ms((int)wait);
        }
    }
out:
    eg_stream_batch_clear(&b);
}

/* Every CLAIM_EVERY_MS, take over commands that another consumer of the group read but did not
 * acknowledge for CLAIM_MIN_IDLE_MS (it died); they become ours and are read from id 0. A Redis
 * without the command for it is warned about once by lib/stream.c, which then claims nothing. */
static void claim_stranded(sim_t *s)
{
    int64_t now = eg_mono_ms();
    eg_stream_batch_t b = {0};

    if (now < s->next_claim_ms) {
        return;
    }
    s->next_claim_ms = now + CLAIM_EVERY_MS;
    eg_status_t st = eg_stream_claim(s->commands, CLAIM_MIN_IDLE_MS, &b);
    if (st == EG_EPROTO) {
        eg_log_error("taking over stranded commands refused: %s", eg_stream_error(s->commands));
    } else if (st != EG_OK) {
        redis_failed(s, "taking over stranded commands", st);
    } else {
        redis_answered(s);
        if (b.n > 0) {
            eg_log_info("took over %zu command(s) stranded on a dead consumer", b.n);
            eg_stream_rewind(s->commands);
        }
    }
    eg_stream_batch_clear(&b);
}

void *sim_run(void *arg)
{
    sim_t *s = arg;

    eg_log_info("voice-sim: step %d ms, default outcome %s, commands %s, events %s", s->o.step_ms,
                outcome_name(s->o.default_outcome), s->o.commands_stream, s->o.events_stream);
    while (!stopping(s)) {
        if (s->store == NULL && !connect_store(s)) {
            continue;
        }
        if (!s->group_ready && !create_group(s)) {
            continue;
        }
        if (!emit_due(s)) {
            continue;
        }
        claim_stranded(s);
        read_commands(s);
    }
    if (s->calls.n > 0) {
        eg_log_info("stopping with %zu call(s) in progress; their remaining steps are dropped",
                    s->calls.n);
    }
    return NULL;
}
