/* services/scheduler/rpc.c over a real nats-server (ENGAGE_NATS_URL): every request gets an
 * answer within the asker's timeout, also one the scheduler cannot decode and one whose answer
 * is larger than the bus allows (a small limit set with eg_bus_set_reply_max keeps it cheap).
 * The handler is subscribed on a subject of this test's own, so the suite's schedulers never
 * see these requests, and it routes nothing there: only rpc.c's own answers are under test. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engage.pb-c.h"
#include "engage/bus.h"
#include "engage/metrics.h"
#include "rpc.h"

#define ASK_TIMEOUT_MS 5000

static eg_bus_t *bus;
static eg_metrics_t *metrics;
static sched_t sched;
static worker_t worker;
static char subject[128];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void setup(void)
{
    const char *url = getenv("ENGAGE_NATS_URL");
    struct timespec ts;
    static const double bounds[] = {0.01, 0.1, 1};
    cr_assert_not_null(url, "ENGAGE_NATS_URL is not set: run through `make test`");
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(subject, sizeof subject, "test.rpc_%ld_%ld", (long)getpid(), ts.tv_nsec);
    metrics = eg_metrics_new();
    sched.requests = eg_metrics_counter(metrics, "t_requests_total", "requests", NULL);
    sched.errors = eg_metrics_counter(metrics, "t_errors_total", "errors", NULL);
    sched.latency = eg_metrics_histogram(metrics, "t_seconds", "latency", NULL, bounds, 3);
    worker.s = &sched;
    cr_assert_eq(eg_bus_open(&bus, url, "rpc-test", 5000), EG_OK, "cannot connect to %s", url);
    sched.bus = bus;
    cr_assert_eq(eg_bus_subscribe(bus, subject, NULL, rpc_handle, &worker), EG_OK);
}

static void teardown(void)
{
    eg_bus_close(bus);
    eg_bus_shutdown();
    eg_metrics_free(metrics);
}

TestSuite(rpc, .init = setup, .fini = teardown, .timeout = 30);

/* Ask and return the answer's status code; asserts it came well within the timeout. */
static int ask_status(char *message, size_t len)
{
    void *raw = NULL;
    size_t raw_len = 0;
    int64_t t0 = now_ms();
    eg_status_t st =
        eg_bus_request(bus, subject, "\xff\xff", 2, NULL, ASK_TIMEOUT_MS, &raw, &raw_len);
    cr_assert_eq(st, EG_OK, "no answer within %d ms (%s)", ASK_TIMEOUT_MS, eg_status_str(st));
    cr_assert_lt(now_ms() - t0, 1000);
    Eg__CallbackReply *r = eg__callback_reply__unpack(NULL, raw_len, raw);
    free(raw);
    cr_assert_not_null(r);
    cr_assert_not_null(r->status);
    int code = r->status->code;
    snprintf(message, len, "%s", r->status->message);
    eg__callback_reply__free_unpacked(r, NULL);
    return code;
}

Test(rpc, an_undecodable_request_is_answered_eproto)
{
    char message[256];
    cr_assert_eq(ask_status(message, sizeof message), EG_EPROTO);
    cr_assert(strstr(message, "decoded") != NULL, "%s", message);
}

Test(rpc, an_answer_too_large_for_the_bus_arrives_as_etoobig)
{
    char message[256];
    eg_bus_set_reply_max(bus, 16);
    cr_assert_eq(ask_status(message, sizeof message), EG_ETOOBIG, "%s", message);
}
