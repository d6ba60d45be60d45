/* Integration tests of eg_bus_reply (lib/bus_reply.c) against a real nats-server: an answer
 * that does not fit the bus reaches the asker as an EG_ETOOBIG status within its timeout,
 * instead of being dropped while the asker waits.
 *
 * ENGAGE_NATS_URL comes from the suite (scripts/test.sh). Criterion runs each test in its own
 * forked process, in parallel, so every subject carries a prefix unique to the process. */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engage.pb-c.h"
#include "engage/bus.h"

/* How long the asker is willing to wait: far longer than an answer takes. */
#define ASK_TIMEOUT_MS 5000
/* The small limit under test, so the large answers stay cheap. */
#define SMALL_MAX 256

static eg_bus_t *bus;
static char subject[128];

/* What the handler sends and what eg_bus_reply told it. */
static size_t answer_len;
static atomic_int handler_saw = -1;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answers a CallbackReply whose status message is answer_len bytes of 'x'. */
static void big_handler(eg_bus_t *b, eg_bus_msg_t *msg, void *arg)
{
    (void)arg;
    char *text = malloc(answer_len + 1);
    memset(text, 'x', answer_len);
    text[answer_len] = '\0';
    Eg__Status s = EG__STATUS__INIT;
    Eg__CallbackReply r = EG__CALLBACK_REPLY__INIT;
    s.code = EG_OK;
    s.message = text;
    r.status = &s;
    r.position_in_queue = 7;
    atomic_store(&handler_saw, (int)eg_bus_reply(b, msg, &r.base));
    free(text);
}

/* What eg_bus_reply returned to the handler. The answer can reach the asker before the handler
 * has stored it, so wait a little for it. */
static int handler_result(void)
{
    int64_t until = now_ms() + 2000;
    while (atomic_load(&handler_saw) == -1 && now_ms() < until) {
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&handler_saw);
}

static void setup(void)
{
    const char *url = getenv("ENGAGE_NATS_URL");
    struct timespec ts;
    cr_assert_not_null(url, "ENGAGE_NATS_URL is not set: start nats-server -js and export its "
                            "URL (scripts/test.sh does)");
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(subject, sizeof subject, "test.reply_%ld_%ld", (long)getpid(), ts.tv_nsec);
    cr_assert_eq(eg_bus_open(&bus, url, "bus-reply-test", 5000), EG_OK, "cannot connect to %s",
                 url);
    cr_assert_eq(eg_bus_subscribe(bus, subject, NULL, big_handler, NULL), EG_OK);
}

static void teardown(void)
{
    eg_bus_close(bus);
    bus = NULL;
    eg_bus_shutdown();
}

TestSuite(bus_reply, .init = setup, .fini = teardown, .timeout = 30);

/* Ask, and decode the answer as the CallbackReply the handler meant to send. Asserts that an
 * answer came, and came well within the timeout. */
static Eg__CallbackReply *ask(void)
{
    void *raw = NULL;
    size_t raw_len = 0;
    int64_t t0 = now_ms();
    eg_status_t st =
        eg_bus_request(bus, subject, "q", 1, "corr-reply", ASK_TIMEOUT_MS, &raw, &raw_len);
    int64_t took = now_ms() - t0;
    cr_assert_eq(st, EG_OK, "no answer within %d ms (%s): the reply was dropped", ASK_TIMEOUT_MS,
                 eg_status_str(st));
    cr_assert_lt(took, 1000, "the answer took %lld ms", (long long)took);
    Eg__CallbackReply *r = eg__callback_reply__unpack(NULL, raw_len, raw);
    free(raw);
    cr_assert_not_null(r, "the answer does not decode as the reply type asked for");
    cr_assert_not_null(r->status, "the answer has no status");
    return r;
}

Test(bus_reply, an_answer_that_fits_arrives_whole)
{
    eg_bus_set_reply_max(bus, SMALL_MAX);
    answer_len = 100;
    Eg__CallbackReply *r = ask();
    cr_assert_eq(r->status->code, EG_OK);
    cr_assert_eq(strlen(r->status->message), 100);
    cr_assert_eq(r->position_in_queue, 7);
    eg__callback_reply__free_unpacked(r, NULL);
    cr_assert_eq(handler_result(), EG_OK);
}

Test(bus_reply, an_answer_over_the_limit_arrives_as_an_error_status)
{
    eg_bus_set_reply_max(bus, SMALL_MAX);
    answer_len = 4 * SMALL_MAX;
    Eg__CallbackReply *r = ask();
    cr_assert_eq(r->status->code, EG_ETOOBIG, "status %d", r->status->code);
    cr_assert(strstr(r->status->message, "256") != NULL, "message: %s", r->status->message);
    cr_assert_eq(r->position_in_queue, 0, "part of the real answer leaked into the error");
    eg__callback_reply__free_unpacked(r, NULL);
    cr_assert_eq(handler_result(), EG_ETOOBIG, "the handler was not told");
}

/* With no limit of ours, the server's max_payload (1 MiB by default) is the limit. */
Test(bus_reply, an_answer_over_the_servers_max_payload_arrives_as_an_error_status)
{
    eg_bus_set_reply_max(bus, 0);
    answer_len = 2 * 1024 * 1024;
    Eg__CallbackReply *r = ask();
    cr_assert_eq(r->status->code, EG_ETOOBIG, "status %d", r->status->code);
    eg__callback_reply__free_unpacked(r, NULL);
    cr_assert_eq(handler_result(), EG_ETOOBIG);
}

Test(bus_reply, a_status_only_reply_decodes_as_any_reply)
{
    eg_bus_set_reply_max(bus, SMALL_MAX);
    answer_len = 10 * SMALL_MAX;
    void *raw = NULL;
    size_t raw_len = 0;
    cr_assert_eq(eg_bus_request(bus, subject, "q", 1, NULL, ASK_TIMEOUT_MS, &raw, &raw_len), EG_OK);
    Eg__FindReply *f = eg__find_reply__unpack(NULL, raw_len, raw);
    free(raw);
    cr_assert_not_null(f);
    cr_assert_not_null(f->status);
    cr_assert_eq(f->status->code, EG_ETOOBIG);
    cr_assert_eq(f->n_callbacks, 0);
    eg__find_reply__free_unpacked(f, NULL);
}
