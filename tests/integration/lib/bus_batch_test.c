/* Integration tests of the batch publisher in lib/bus.c (eg_bus_js_batch_*) against a real
 * nats-server with JetStream (ENGAGE_NATS_URL). Names carry a per-process prefix. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engage/bus.h"

static eg_bus_t *bus;
static char uniq[64];

static void setup(void)
{
    const char *url = getenv("ENGAGE_NATS_URL");
    struct timespec ts;
    cr_assert_not_null(url, "ENGAGE_NATS_URL is not set");
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(uniq, sizeof(uniq), "%ld_%ld_%ld", (long)getpid(), (long)ts.tv_sec, ts.tv_nsec);
    cr_assert_eq(eg_bus_open(&bus, url, "bus-batch-test", 5000), EG_OK);
}

static void teardown(void)
{
    eg_bus_close(bus);
    bus = NULL;
    eg_bus_shutdown();
}

TestSuite(bus_batch, .init = setup, .fini = teardown, .timeout = 60);

static void make_stream(char *stream, size_t slen, char *base, size_t blen)
{
    char wildcard[160];
    const char *subjects[1];
    snprintf(stream, slen, "SB_%s", uniq);
    snprintf(base, blen, "jsb_%s", uniq);
    snprintf(wildcard, sizeof(wildcard), "%s.>", base);
    subjects[0] = wildcard;
    cr_assert_eq(eg_bus_js_stream_ensure(bus, stream, subjects, 1, 60, 30), EG_OK);
}

Test(bus_batch, a_batch_is_stored_in_order_and_acknowledged)
{
    char stream[128], base[128], subject[160], durable[128], id[32], data[32];
    eg_bus_js_batch_t *b = NULL;
    eg_bus_consumer_t *c = NULL;
    enum { N = 300 };
    bool acked[N + 2];

    make_stream(stream, sizeof stream, base, sizeof base);
    snprintf(subject, sizeof subject, "%s.events", base);
    cr_assert_eq(eg_bus_js_batch_open(bus, &b), EG_OK);
    /* Nothing added: nothing to wait for. */
    cr_assert_eq(eg_bus_js_batch_wait(b, 1000, NULL, 0), EG_OK);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        snprintf(data, sizeof data, "payload %d", i);
        cr_assert_eq(eg_bus_js_batch_add(b, subject, data, strlen(data), id, "corr-b"), EG_OK);
    }
    memset(acked, 1, sizeof acked);
    cr_assert_eq(eg_bus_js_batch_wait(b, 5000, acked, N + 2), EG_OK);
    for (int i = 0; i < N; i++)
        cr_assert(acked[i], "slot %d not acknowledged", i);
    cr_assert_not(acked[N], "a slot past the batch reads acknowledged");

    /* A second batch repeating ids: duplicates count as stored, and are stored once. */
    cr_assert_eq(eg_bus_js_batch_add(b, subject, "again", 5, "m-0", NULL), EG_OK);
    cr_assert_eq(eg_bus_js_batch_add(b, subject, "new", 3, "m-new", NULL), EG_OK);
    cr_assert_eq(eg_bus_js_batch_wait(b, 5000, acked, 2), EG_OK);
    cr_assert(acked[0] && acked[1]);

    snprintf(durable, sizeof durable, "batch_%s", uniq);
    cr_assert_eq(eg_bus_js_consumer_open(bus, stream, durable, NULL, 5, &c), EG_OK);
    int seen = 0;
    while (seen < N + 1) {
        eg_bus_jsmsg_t *msgs[64];
        int count = 0;
        cr_assert_eq(eg_bus_js_fetch(c, 64, 2000, msgs, &count), EG_OK, "after %d", seen);
        for (int k = 0; k < count; k++, seen++) {
            if (seen < N)
                snprintf(id, sizeof id, "m-%d", seen);
            else
                snprintf(id, sizeof id, "m-new");
            cr_assert_str_eq(eg_bus_jsmsg_id(msgs[k]), id, "message %d out of order", seen);
            cr_assert_eq(eg_bus_jsmsg_seq(msgs[k]), (uint64_t)seen + 1);
            eg_bus_jsmsg_ack(msgs[k]);
            eg_bus_jsmsg_free(msgs[k]);
        }
    }
    eg_bus_jsmsg_t *extra[4];
    int count = -1;
    cr_assert_eq(eg_bus_js_fetch(c, 4, 500, extra, &count), EG_ETIMEOUT);
    eg_bus_consumer_close(c);
    eg_bus_js_batch_close(b);
}

Test(bus_batch, no_stream_means_nothing_acknowledged)
{
    char subject[160];
    eg_bus_js_batch_t *b = NULL;
    bool acked[3] = {true, true, true};

    snprintf(subject, sizeof subject, "nostream_%s.x", uniq);
    cr_assert_eq(eg_bus_js_batch_open(bus, &b), EG_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(eg_bus_js_batch_add(b, subject, "x", 1, "id", NULL), EG_OK);
    cr_assert_eq(eg_bus_js_batch_wait(b, 3000, acked, 3), EG_EUNAVAIL);
    cr_assert_not(acked[0] || acked[1] || acked[2]);
    eg_bus_js_batch_close(b);
}

Test(bus_batch, close_accepts_null)
{
    eg_bus_js_batch_close(NULL);
}
