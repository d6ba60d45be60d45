/* queue.stats: the latest figures per tenant and virtual queue in one Redis hash each (see
 * queue_stats.h), written by one small Lua step that keeps the newest `at`
 * (lua/queue_stats_put.lua), and the two EWT formulas that use them. Nothing here is per callback:
 * the cost is one hash per virtual queue the platform reports on, gone a few minutes after it
 * stops. */
#include "queue_stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "queue_stats_put_lua.h"
#include "store_keys.h"

eg_status_t qstats_store(eg_store_t *store, const char *tenant, const char *vq, const qstats_t *qs,
                         bool *stored)
{
    char at[24], in[16], ready[16], waiting[16], aht[16], ttl[16];
    int script = -1;
    snprintf(at, sizeof at, "%" PRId64, qs->at_ms);
    snprintf(in, sizeof in, "%d", qs->agents_logged_in);
    snprintf(ready, sizeof ready, "%d", qs->agents_ready);
    snprintf(waiting, sizeof waiting, "%d", qs->calls_waiting);
    snprintf(aht, sizeof aht, "%d", qs->avg_handle_time_s);
    snprintf(ttl, sizeof ttl, "%d", QSTATS_TTL_MS);
    /* Registered once per connection; later calls find it by its source. */
    eg_status_t st = eg_store_script_add(store, queue_stats_put_lua, &script);
    if (st != EG_OK)
        return st;
    char *key = store_key(STORE_QSTATS, tenant, vq);
    const char *argv[QUEUE_STATS_PUT_ARGC] = {
        [QUEUE_STATS_PUT_KEY_STATS] = key,       [QUEUE_STATS_PUT_ARG_AT_MS] = at,
        [QUEUE_STATS_PUT_ARG_LOGGED_IN] = in,    [QUEUE_STATS_PUT_ARG_READY] = ready,
        [QUEUE_STATS_PUT_ARG_WAITING] = waiting, [QUEUE_STATS_PUT_ARG_AHT_S] = aht,
        [QUEUE_STATS_PUT_ARG_TTL_MS] = ttl,
    };
    size_t lens[QUEUE_STATS_PUT_ARGC];
    store_script_lens(argv, lens, QUEUE_STATS_PUT_ARGC, "queue_stats_put.lua", NULL, 0);
    eg_reply_t *r = NULL;
    st = eg_store_eval(store, script, QUEUE_STATS_PUT_NKEYS, QUEUE_STATS_PUT_ARGC, argv, lens, &r);
    if (st == EG_OK && r->type != EG_REPLY_INTEGER)
        st = EG_EPROTO;
    if (stored)
        *stored = st == EG_OK && r->integer == QUEUE_STATS_PUT_RET_STORED;
    eg_reply_free(r);
    free(key);
    return st;
}

eg_status_t qstats_load(eg_store_t *store, const char *tenant, const char *vq, qstats_t *qs)
{
    char *key = store_key(STORE_QSTATS, tenant, vq);
    const char *argv[] = {"HMGET", key, "at", "logged_in", "ready", "waiting", "aht"};
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(store, 7, argv, NULL, &r);
    if (st != EG_OK)
        goto out;
    if (r->type != EG_REPLY_ARRAY || r->elements != 5) {
        st = EG_EPROTO;
        goto out;
    }
    for (size_t i = 0; i < 5; i++) {
        if (r->element[i]->type != EG_REPLY_STRING) {
            st = EG_ENOTFOUND;
            goto out;
        }
    }
    qs->at_ms = strtoll(r->element[0]->str, NULL, 10);
    qs->agents_logged_in = atoi(r->element[1]->str);
    qs->agents_ready = atoi(r->element[2]->str);
    qs->calls_waiting = atoi(r->element[3]->str);
    qs->avg_handle_time_s = atoi(r->element[4]->str);
out:
    eg_reply_free(r);
    free(key);
    return st;
}

/* a x b / c, rounded to the nearest integer, capped to fit an int. c > 0. */
static int scaled(int64_t a, int64_t b, int64_t c)
{
    int64_t v = (a * b + c / 2) / c;
    return v > INT32_MAX ? INT32_MAX : (int)v;
}

int qstats_ewt(int mode, int callbacks, const qstats_t *qs, int *result_code, const char **message)
{
    *result_code = -2;
    if (!qs) {
        *message = "no queue.stats from the voice platform for this virtual queue in the last 5 "
                   "minutes";
        return -1;
    }
    int agents = qs->agents_logged_in;
    if (mode == 3 && qs->agents_ready > 0)
        agents = qs->agents_ready;
    if (qs->agents_logged_in <= 0 || agents <= 0) {
        *message = "no agents logged in";
        return -1;
    }
    *result_code = 0;
    *message = "OK";
    int64_t waiting = mode == 3 ? qs->calls_waiting : (int64_t)callbacks + qs->calls_waiting;
    return scaled(waiting, qs->avg_handle_time_s, agents);
}

static bool vq_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

static bool count_valid(int32_t v)
{
    return v >= 0 && v <= QSTATS_MAX_COUNT;
}

eg_status_t qstats_rpc_put(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__QueueStatsRequest *req =
        eg__queue_stats_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    char text[160] = "";
    eg_status_t st = EG_OK;
    if (!eg_uuid_valid(req->tenant_id)) {
        st = EG_EINVAL;
        snprintf(text, sizeof text, "tenant: must be a UUID");
    } else if (!vq_valid(req->virtual_queue)) {
        st = EG_EINVAL;
        snprintf(text, sizeof text, "virtual_queue: 1 to 128 printable characters");
    } else if (!count_valid(req->agents_logged_in) || !count_valid(req->agents_ready) ||
               !count_valid(req->calls_waiting) || !count_valid(req->avg_handle_time_s)) {
        st = EG_EINVAL;
        snprintf(text, sizeof text, "counts: must be integers from 0 to %d", QSTATS_MAX_COUNT);
    } else {
        qstats_t qs = {.at_ms = req->at_ms,
                       .agents_logged_in = req->agents_logged_in,
                       .agents_ready = req->agents_ready,
                       .calls_waiting = req->calls_waiting,
                       .avg_handle_time_s = req->avg_handle_time_s};
        bool stored = false;
        st = qstats_store(w->store, req->tenant_id, req->virtual_queue, &qs, &stored);
        if (st != EG_OK) {
            eg_log_error("queue.stats for %s: store failed: %s", req->virtual_queue,
                         eg_status_str(st));
            st = EG_EUNAVAIL;
            snprintf(text, sizeof text, "statistics store unavailable; retry");
        } else if (!stored) {
            eg_log_debug("queue.stats for %s older than the stored figures; ignored",
                         req->virtual_queue);
        }
    }
    Eg__Status s = EG__STATUS__INIT;
    Eg__StatusReply r = EG__STATUS_REPLY__INIT;
    s.code = (int32_t)st;
    s.message = text;
    r.status = &s;
    eg_bus_reply(bus, msg, &r.base);
    eg__queue_stats_request__free_unpacked(req, NULL);
    return st;
}
