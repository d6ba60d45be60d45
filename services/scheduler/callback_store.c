/* Callback records in Redis: see callback_store.h for the key layout. Two Lua scripts do all
 * the writing; each is one atomic step that changes the record, its indexes, its slot counter
 * and appends the event to the tenant's outbox, so a state change and its event are never
 * apart (the outbox relay publishes the event later). */
#include "callback_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/compress.h"
#include "engage/log.h"
#include "engage/mem.h"

/* KEYS: cb, index, slots, outbox, number (the HASH of the tenant's number: see the .h), idem
 *       (the Idempotency-Key's id), watch, daily (the service's counters of the UTC day).
 * ARGV: blob, id, index score, ttl ms, slot field ("" = none), capacity, event id, event blob,
 *       now ms, max active (0 = none), max per day (0 = none), idempotency ttl ms ("" = none),
 *       watch score ("" = not watched), service.
 * Returns 1 created, -1 id exists, {0, used} slot full, {2, id} idempotent replay,
 *         {3, n} per-day limit, {4, n} active limit. */
static const char create_lua[] =
    "if ARGV[12] ~= '' then\n"
    "  local prev = redis.call('GET', KEYS[6])\n"
    "  if prev then return {2, prev} end\n"
    "end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    "local now = tonumber(ARGV[9])\n"
    "local af, df = 'a:' .. ARGV[14], 'd:' .. ARGV[14]\n"
    "local num = redis.call('HMGET', KEYS[5], af, df)\n"
    "local live = tonumber(num[1] or '0')\n"
    "local fields = {'i:' .. ARGV[2], ARGV[9], af, live + 1}\n"
    "if tonumber(ARGV[11]) > 0 then\n"
    /* The number's creates of the last 24 h, as seconds, oldest first. */
    "  local kept, since = {}, math.floor(now / 1000) - 86400\n"
    "  for t in string.gmatch(num[2] or '', '%d+') do\n"
    "    if tonumber(t) > since then kept[#kept + 1] = t end\n"
    "  end\n"
    "  if #kept >= tonumber(ARGV[11]) then return {3, #kept} end\n"
    "  kept[#kept + 1] = tostring(math.floor(now / 1000))\n"
    "  fields[5], fields[6] = df, table.concat(kept, ' ')\n"
    "end\n"
    "if tonumber(ARGV[10]) > 0 and live >= tonumber(ARGV[10]) then return {4, live} end\n"
    "if ARGV[5] ~= '' then\n"
    "  local used = tonumber(redis.call('HGET', KEYS[3], ARGV[5]) or '0')\n"
    "  if used >= tonumber(ARGV[6]) then return {0, used} end\n"
    "  redis.call('HINCRBY', KEYS[3], ARGV[5], 1)\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])\n"
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])\n"
    "if ARGV[13] ~= '' then redis.call('ZADD', KEYS[7], ARGV[13], ARGV[2]) end\n"
    "redis.call('HSET', KEYS[5], unpack(fields))\n"
    /* The number's hash lives as long as its longest-lived record: never shorten. */
    "if redis.call('PTTL', KEYS[5]) < tonumber(ARGV[4]) then\n"
    "  redis.call('PEXPIRE', KEYS[5], ARGV[4]) end\n"
    "if ARGV[12] ~= '' then redis.call('SET', KEYS[6], ARGV[2], 'PX', ARGV[12]) end\n"
    "redis.call('XADD', KEYS[4], '*', 'e', ARGV[7], 'd', ARGV[8])\n"
    /* The day's counter expires 3 days after its first use. */
    "if redis.call('HINCRBY', KEYS[8], 'created', 1) == 1 then\n"
    "  redis.call('PEXPIRE', KEYS[8], 259200000) end\n"
    "return 1\n";

/* KEYS: cb, due, queue, watch, slots, outbox, number hash, served (the virtual queue's last
 *       serve times), stats (the service's live counters), daily (the service's counters of the
 *       UTC day of the change).
 * ARGV: old blob, new blob, id, then for due, queue and watch in turn an operation ("a" add,
 *       "r" remove, "" leave) and its score; ttl ms, slot field to release ("" none), event id,
 *       event blob, the number hash's live-count field ("a:<service>") when the callback is no
 *       longer live, else ""; "+" when an agent took it (PROCESSING), "-" when it left
 *       PROCESSING, else ""; "1" when it completed; now ms.
 * Returns 1 done, 0 conflict (the record changed or vanished). */
static const char transition_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[10])\n"
    "for i = 0, 2 do\n"
    "  local op = ARGV[4 + 2 * i]\n"
    "  if op == 'a' then redis.call('ZADD', KEYS[2 + i], ARGV[5 + 2 * i], ARGV[3])\n"
    "  elseif op == 'r' then redis.call('ZREM', KEYS[2 + i], ARGV[3]) end\n"
    "end\n"
    "if ARGV[11] ~= '' then\n"
    "  if redis.call('HINCRBY', KEYS[5], ARGV[11], -1) <= 0 then\n"
    "    redis.call('HDEL', KEYS[5], ARGV[11]) end\n"
    "end\n"
    "if ARGV[14] ~= '' and redis.call('HINCRBY', KEYS[7], ARGV[14], -1) <= 0 then\n"
    "  redis.call('HDEL', KEYS[7], ARGV[14]) end\n"
    "redis.call('XADD', KEYS[6], '*', 'e', ARGV[12], 'd', ARGV[13])\n"
    "if ARGV[15] == '+' then\n"
    "  redis.call('LPUSH', KEYS[8], ARGV[17])\n"
    "  redis.call('LTRIM', KEYS[8], 0, 31)\n"
    "  redis.call('HINCRBY', KEYS[9], 'processing', 1)\n"
    "elseif ARGV[15] == '-' then redis.call('HINCRBY', KEYS[9], 'processing', -1) end\n"
    "if ARGV[16] == '1' and redis.call('HINCRBY', KEYS[10], 'completed', 1) == 1 then\n"
    "  redis.call('PEXPIRE', KEYS[10], 259200000) end\n"
    "return 1\n";

/* KEYS: cb, due, slots, outbox, number hash.
 * ARGV: old blob, new blob, id, due score, ttl ms, old slot field, new slot field, new slot
 *       capacity, event id, event blob.
 * Returns 1 moved, 0 conflict, {0, used} new slot full. */
static const char reschedule_lua[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "if ARGV[6] ~= ARGV[7] then\n"
    "  local used = tonumber(redis.call('HGET', KEYS[3], ARGV[7]) or '0')\n"
    "  if used >= tonumber(ARGV[8]) then return {0, used} end\n"
    "  redis.call('HINCRBY', KEYS[3], ARGV[7], 1)\n"
    "  if ARGV[6] ~= '' and redis.call('HINCRBY', KEYS[3], ARGV[6], -1) <= 0 then\n"
    "    redis.call('HDEL', KEYS[3], ARGV[6]) end\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[5])\n"
    "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])\n"
    /* A later desired time keeps the record longer: its number's hash too. */
    "local t = redis.call('PTTL', KEYS[5])\n"
    "if t ~= -2 and t < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[5], ARGV[5]) end\n"
    "redis.call('XADD', KEYS[4], '*', 'e', ARGV[9], 'd', ARGV[10])\n"
    "return 1\n";

void cb_key(char *out, size_t outlen, const char *tenant, const char *kind, const char *rest)
{
    if (rest)
        snprintf(out, outlen, "eg:{t:%s}:%s:%s", tenant, kind, rest);
    else
        snprintf(out, outlen, "eg:{t:%s}:%s", tenant, kind);
}

eg_status_t cb_store_init(eg_store_t *store, cb_scripts_t *scripts)
{
    eg_status_t st = eg_store_script_add(store, create_lua, &scripts->create);
    if (st == EG_OK)
        st = eg_store_script_add(store, transition_lua, &scripts->transition);
    if (st == EG_OK)
        st = eg_store_script_add(store, reschedule_lua, &scripts->reschedule);
    return st;
}

/* The index a callback in this state belongs to ("due" or "q"), or NULL for none. */
static const char *index_kind(Eg__State s)
{
    switch (s) {
    case EG__STATE__STATE_SCHEDULED:
        return "due";
    case EG__STATE__STATE_QUEUED:
    case EG__STATE__STATE_ROUTING:
        return "q"; /* PROCESSING has left the queue: an agent has it */
    default:
        return NULL;
    }
}

/* Queue score: priority first (higher served first), then time of entry. */
static int64_t index_score(const Eg__Callback *cb)
{
    if (cb->state == EG__STATE__STATE_SCHEDULED)
        return cb->due_ms;
    return cb->due_ms - (int64_t)cb->priority * 1000000000LL;
}

/* The operation on one index for a change: add (with its score), remove or leave alone. */
typedef struct {
    const char *op;
    char score[32];
} index_op_t;

static void index_op(index_op_t *o, bool was_in, int64_t was_score, bool is_in, int64_t score)
{
    o->score[0] = '\0';
    if (is_in && (!was_in || was_score != score)) {
        o->op = "a";
        snprintf(o->score, sizeof o->score, "%" PRId64, score);
    } else {
        o->op = !is_in && was_in ? "r" : "";
    }
}

static bool in_queue(Eg__State s)
{
    return s == EG__STATE__STATE_QUEUED || s == EG__STATE__STATE_ROUTING;
}

static bool watched(const Eg__Callback *cb)
{
    return cb->watch_ms &&
           (cb->state == EG__STATE__STATE_QUEUED || cb->state == EG__STATE__STATE_ROUTING ||
            cb->state == EG__STATE__STATE_PROCESSING);
}

/* The service's counters of the UTC day of cb's last change. */
static void daily_key(char *out, size_t outlen, const Eg__Callback *cb)
{
    char rest[200];
    snprintf(rest, sizeof rest, "%s:%" PRId64, cb->service, cb->updated_ms / 86400000);
    cb_key(out, outlen, cb->tenant_id, "daily", rest);
}

static int64_t ttl_ms(const Eg__Callback *cb, int64_t now)
{
    /* Kept 14 days after its desired time, or after its last change when that is later (a
     * callback that completes late stays readable for 14 days). */
    int64_t base = cb->desired_time_ms > cb->created_ms ? cb->desired_time_ms : cb->created_ms;
    if (cb->updated_ms > base)
        base = cb->updated_ms;
    int64_t ttl = base + CB_RETENTION_MS - now;
    return ttl > 1000 ? ttl : 1000;
}

/* User data shorter than this is stored as it is. */
#define CB_DEFLATE_MIN 128
/* The most user data a stored record inflates to (the API accepts 100 kB). */
#define CB_INFLATE_MAX (1024 * 1024)

uint8_t *cb_store_pack(const Eg__Callback *cb, size_t *len)
{
    Eg__Callback z = *cb;
    /* The tenant and the id are in the record's key: not stored twice. */
    z.tenant_id = (char *)protobuf_c_empty_string;
    z.id = (char *)protobuf_c_empty_string;
    uint8_t *deflated = NULL;
    size_t dlen = 0;
    size_t ulen = cb->user_data_json ? strlen(cb->user_data_json) : 0;
    if (ulen >= CB_DEFLATE_MIN && eg_deflate(cb->user_data_json, ulen, &deflated, &dlen) == EG_OK) {
        z.user_data_json = (char *)protobuf_c_empty_string;
        z.user_data_z.data = deflated;
        z.user_data_z.len = dlen;
    }
    *len = eg__callback__get_packed_size(&z);
    uint8_t *b = eg_xmalloc(*len ? *len : 1);
    eg__callback__pack(&z, b);
    free(deflated);
    return b;
}

/* Put a string field back (the unpacked default is protobuf-c's, never freed). */
static void set_field(char **field, const char *value)
{
    if (*field && *field != protobuf_c_empty_string)
        free(*field);
    *field = eg_xstrdup(value);
}

Eg__Callback *cb_store_unpack(const char *tenant, const char *id, const void *blob, size_t len)
{
    Eg__Callback *cb = eg__callback__unpack(NULL, len, blob);
    if (!cb)
        return NULL;
    set_field(&cb->tenant_id, tenant);
    set_field(&cb->id, id);
    if (!cb->user_data_z.len)
        return cb;
    char *json = NULL;
    size_t jlen = 0;
    eg_status_t st =
        eg_inflate(cb->user_data_z.data, cb->user_data_z.len, CB_INFLATE_MAX, &json, &jlen);
    if (st != EG_OK) {
        eg__callback__free_unpacked(cb, NULL);
        return NULL;
    }
    if (cb->user_data_json && cb->user_data_json != protobuf_c_empty_string)
        free(cb->user_data_json);
    cb->user_data_json = json;
    free(cb->user_data_z.data);
    cb->user_data_z.data = NULL;
    cb->user_data_z.len = 0;
    return cb;
}

static uint8_t *pack_cb(const Eg__Callback *cb, size_t *len)
{
    return cb_store_pack(cb, len);
}

static uint8_t *pack_ev(const Eg__Event *ev, size_t *len)
{
    *len = eg__event__get_packed_size(ev);
    uint8_t *b = eg_xmalloc(*len ? *len : 1);
    eg__event__pack(ev, b);
    return b;
}

void cb_followup_init(cb_followup_t *f, Eg__State from, const Eg__Callback *cb)
{
    memset(f, 0, sizeof *f);
    snprintf(f->member, sizeof f->member, "%s|%s", cb->tenant_id, cb->service);
    snprintf(f->tenant, sizeof f->tenant, "%s", cb->tenant_id);
    /* The due index learns the earliest time a dispatcher must look at this service: a due
     * time, or the watch time of an attempt just handed over (later changes only move a watch
     * time later, and the index entry may stay early: a dispatcher then looks once in vain). */
    bool from_live = from == EG__STATE__STATE_QUEUED || from == EG__STATE__STATE_ROUTING ||
                     from == EG__STATE__STATE_PROCESSING;
    bool index_it = cb->state == EG__STATE__STATE_SCHEDULED || (watched(cb) && !from_live);
    snprintf(f->due, sizeof f->due, "%" PRId64,
             cb->state == EG__STATE__STATE_SCHEDULED ? cb->due_ms : cb->watch_ms);
    f->due_ms = cb->state == EG__STATE__STATE_SCHEDULED ? cb->due_ms : cb->watch_ms;
    f->sadd[0] = "SADD";
    f->sadd[1] = CB_KEY_OUTBOX_PENDING;
    f->sadd[2] = f->tenant;
    f->zadd[0] = "ZADD";
    f->zadd[1] = CB_KEY_DUE_INDEX;
    f->zadd[2] = "LT";
    f->zadd[3] = "CH";
    f->zadd[4] = f->due;
    f->zadd[5] = f->member;
    f->cmds[0] = f->sadd;
    f->argcs[0] = 3;
    f->cmds[1] = f->zadd;
    f->argcs[1] = 6;
    f->n = index_it ? 2 : 1;
    f->st = EG_EUNAVAIL; /* until it ran */
}

/* Run a script with the follow-up behind it in the same round trip (or alone without one). */
static eg_status_t eval_with(eg_store_t *store, int script, int nkeys, int argc, const char **argv,
                             const size_t *lens, eg_reply_t **r, cb_followup_t *f)
{
    if (!f)
        return eg_store_eval(store, script, nkeys, argc, argv, lens, r);
    eg_reply_t *after[2] = {NULL, NULL};
    eg_status_t st = eg_store_eval_then(store, script, nkeys, argc, argv, lens, r, f->n, f->argcs,
                                        f->cmds, after);
    f->st = st == EG_OK || st == EG_EPROTO ? EG_OK : st;
    for (size_t i = 0; i < f->n; i++) {
        if (f->st == EG_OK && (!after[i] || after[i]->type == EG_REPLY_ERROR))
            f->st = EG_EPROTO;
    }
    f->lowered =
        f->st == EG_OK && f->n == 2 && after[1]->type == EG_REPLY_INTEGER && after[1]->integer > 0;
    eg_reply_free(after[0]);
    eg_reply_free(after[1]);
    return st;
}

eg_status_t cb_store_create(eg_store_t *store, const cb_scripts_t *scripts, const Eg__Callback *cb,
                            const Eg__Event *ev, const cb_create_opts_t *opts,
                            cb_create_result_t *res, cb_followup_t *f)
{
    char k_cb[160], k_idx[200], k_slots[200], k_out[120], k_num[200], k_idem[400], k_w[200],
        k_daily[260], score[32], ttl[32], slot[32], cap[16], now[32], max_active[16], max_day[16],
        idem_ttl[32], watch[32];
    const char *kind = index_kind(cb->state);
    bool idem = opts->idem_key && *opts->idem_key;
    memset(res, 0, sizeof *res);
    cb_key(k_cb, sizeof k_cb, cb->tenant_id, "cb", cb->id);
    cb_key(k_idx, sizeof k_idx, cb->tenant_id, kind ? kind : "q", cb->service);
    cb_key(k_slots, sizeof k_slots, cb->tenant_id, "slots", cb->service);
    cb_key(k_out, sizeof k_out, cb->tenant_id, "outbox", NULL);
    cb_key(k_num, sizeof k_num, cb->tenant_id, "n", cb->phone);
    cb_key(k_idem, sizeof k_idem, cb->tenant_id, "idem", idem ? opts->idem_key : "-");
    cb_key(k_w, sizeof k_w, cb->tenant_id, "w", cb->service);
    daily_key(k_daily, sizeof k_daily, cb);
    watch[0] = '\0';
    if (watched(cb))
        snprintf(watch, sizeof watch, "%" PRId64, cb->watch_ms);
    snprintf(score, sizeof score, "%" PRId64, index_score(cb));
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms(cb, cb->created_ms));
    slot[0] = '\0';
    if (opts->slot_capacity >= 0)
        snprintf(slot, sizeof slot, "%" PRId64, cb->slot_start_ms);
    snprintf(cap, sizeof cap, "%d", opts->slot_capacity);
    snprintf(now, sizeof now, "%" PRId64, cb->created_ms);
    snprintf(max_active, sizeof max_active, "%d", opts->max_active);
    snprintf(max_day, sizeof max_day, "%d", opts->max_per_day);
    idem_ttl[0] = '\0';
    if (idem)
        snprintf(idem_ttl, sizeof idem_ttl, "%d", CB_IDEMPOTENCY_TTL_MS);

    size_t blob_len, ev_len;
    uint8_t *blob = pack_cb(cb, &blob_len);
    uint8_t *evb = pack_ev(ev, &ev_len);
    const char *argv[] = {k_cb,    k_idx,    k_slots,      k_out,       k_num, k_idem,
                          k_w,     k_daily,  (char *)blob, cb->id,      score, ttl,
                          slot,    cap,      ev->event_id, (char *)evb, now,   max_active,
                          max_day, idem_ttl, watch,        cb->service};
    enum { N_KEYS = 8, BLOB = 8, EVB = 15 };
    size_t lens[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        lens[i] = (i == BLOB || i == EVB) ? 0 : strlen(argv[i]); /* binary ones below */
    lens[BLOB] = blob_len;
    lens[EVB] = ev_len;
    eg_reply_t *r = NULL;
    eg_status_t st = eval_with(store, scripts->create, N_KEYS, (int)(sizeof argv / sizeof *argv),
                               argv, lens, &r, f);
    if (st != EG_OK)
        goto out;
    if (r->type == EG_REPLY_INTEGER && r->integer == 1) {
        st = EG_OK;
    } else if (r->type == EG_REPLY_INTEGER && r->integer == -1) {
        st = EG_ECONFLICT;
    } else if (r->type == EG_REPLY_ARRAY && r->elements == 2) {
        long long code = r->element[0]->integer;
        if (code == 2) {
            res->replayed = true;
            snprintf(res->existing_id, sizeof res->existing_id, "%s", r->element[1]->str);
            st = EG_OK;
        } else {
            res->count = (int)r->element[1]->integer;
            res->limit_kind = code == 3 ? CB_LIMIT_PER_DAY : CB_LIMIT_ACTIVE;
            st = code == 0 ? EG_EFULL : EG_ELIMIT;
        }
    } else {
        st = EG_EPROTO;
    }
out:
    eg_reply_free(r);
    free(blob);
    free(evb);
    return st;
}

eg_status_t cb_store_get(eg_store_t *store, const char *tenant, const char *id, Eg__Callback **cb,
                         char **blob, size_t *blob_len)
{
    char k_cb[160];
    cb_key(k_cb, sizeof k_cb, tenant, "cb", id);
    const char *argv[] = {"GET", k_cb};
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(store, 2, argv, NULL, &r);
    if (st != EG_OK)
        goto out;
    if (r->type == EG_REPLY_NIL) {
        st = EG_ENOTFOUND;
        goto out;
    }
    if (r->type != EG_REPLY_STRING) {
        st = EG_EPROTO;
        goto out;
    }
    *cb = cb_store_unpack(tenant, id, r->str, r->len);
    if (!*cb) {
        eg_log_error("callback %s: stored record cannot be decoded", id);
        st = EG_EPROTO;
        goto out;
    }
    if (blob) {
        *blob = eg_xmalloc(r->len ? r->len : 1);
        memcpy(*blob, r->str, r->len);
        *blob_len = r->len;
    }
out:
    eg_reply_free(r);
    return st;
}

eg_status_t cb_store_transition(eg_store_t *store, const cb_scripts_t *scripts, const char *old,
                                size_t old_len, const Eg__Callback *prev, const Eg__Callback *next,
                                const Eg__Event *ev, int release_slot, cb_followup_t *f)
{
    char k_cb[160], k_due[200], k_q[200], k_w[200], k_slots[200], k_out[120], k_num[200],
        k_served[200], k_stats[200], k_daily[260], live_field[140], ttl[32], slot[32], now[32];
    index_op_t due, q, watch;
    bool was_sched = prev->state == EG__STATE__STATE_SCHEDULED;
    index_op(&due, was_sched, prev->due_ms, next->state == EG__STATE__STATE_SCHEDULED,
             next->due_ms);
    /* A callback re-added with the same score is a no-op: the first dispatch always adds. */
    index_op(&q, in_queue(prev->state), index_score(prev), in_queue(next->state),
             index_score(next));
    index_op(&watch, watched(prev), prev->watch_ms, watched(next), next->watch_ms);
    if (was_sched && next->state == EG__STATE__STATE_SCHEDULED)
        due.op = "a"; /* deferred or retried: always rewrite the due time */
    cb_key(k_num, sizeof k_num, next->tenant_id, "n", next->phone);
    cb_key(k_cb, sizeof k_cb, next->tenant_id, "cb", next->id);
    cb_key(k_due, sizeof k_due, next->tenant_id, "due", next->service);
    cb_key(k_q, sizeof k_q, next->tenant_id, "q", next->service);
    cb_key(k_w, sizeof k_w, next->tenant_id, "w", next->service);
    cb_key(k_slots, sizeof k_slots, next->tenant_id, "slots", next->service);
    cb_key(k_out, sizeof k_out, next->tenant_id, "outbox", NULL);
    cb_key(k_served, sizeof k_served, next->tenant_id, "served", next->virtual_queue);
    cb_key(k_stats, sizeof k_stats, next->tenant_id, "stats", next->service);
    daily_key(k_daily, sizeof k_daily, next);
    snprintf(now, sizeof now, "%" PRId64, next->updated_ms);
    bool processing = next->state == EG__STATE__STATE_PROCESSING,
         was_processing = prev->state == EG__STATE__STATE_PROCESSING;
    const char *agent = processing && !was_processing   ? "+"
                        : !processing && was_processing ? "-"
                                                        : "";
    const char *completed =
        next->state == EG__STATE__STATE_COMPLETED && prev->state != EG__STATE__STATE_COMPLETED ? "1"
                                                                                               : "";
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms(next, next->updated_ms));
    slot[0] = '\0';
    if (release_slot && prev->slot_start_ms)
        snprintf(slot, sizeof slot, "%" PRId64, prev->slot_start_ms);

    size_t blob_len, ev_len;
    uint8_t *blob = pack_cb(next, &blob_len);
    uint8_t *evb = pack_ev(ev, &ev_len);
    live_field[0] = '\0';
    if (next->state == EG__STATE__STATE_COMPLETED && prev->state != EG__STATE__STATE_COMPLETED)
        snprintf(live_field, sizeof live_field, "a:%s", next->service);
    const char *done = live_field;
    const char *argv[] = {
        k_cb,         k_due,       k_q,     k_w,      k_slots,      k_out,    k_num,
        k_served,     k_stats,     k_daily, old,      (char *)blob, next->id, due.op,
        due.score,    q.op,        q.score, watch.op, watch.score,  ttl,      slot,
        ev->event_id, (char *)evb, done,    agent,    completed,    now};
    enum { N_KEYS = 10, OLD = 10, BLOB = 11, EVB = 22 };
    size_t lens[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        lens[i] = (i == OLD || i == BLOB || i == EVB) ? 0 : strlen(argv[i]);
    lens[OLD] = old_len;
    lens[BLOB] = blob_len;
    lens[EVB] = ev_len;
    eg_reply_t *r = NULL;
    eg_status_t st = eval_with(store, scripts->transition, N_KEYS,
                               (int)(sizeof argv / sizeof *argv), argv, lens, &r, f);
    if (st == EG_OK)
        st = (r->type == EG_REPLY_INTEGER && r->integer == 1) ? EG_OK : EG_ECONFLICT;
    eg_reply_free(r);
    free(blob);
    free(evb);
    return st;
}

int cb_store_queue_position(eg_store_t *store, const Eg__Callback *cb)
{
    if (index_kind(cb->state) == NULL || cb->state == EG__STATE__STATE_SCHEDULED)
        return 0;
    char k_q[200];
    cb_key(k_q, sizeof k_q, cb->tenant_id, "q", cb->service);
    const char *argv[] = {"ZRANK", k_q, cb->id};
    eg_reply_t *r = NULL;
    int pos = 0;
    if (eg_store_command(store, 3, argv, NULL, &r) == EG_OK && r->type == EG_REPLY_INTEGER)
        pos = (int)r->integer + 1;
    eg_reply_free(r);
    return pos;
}

eg_status_t cb_store_slot_counts(eg_store_t *store, const char *tenant, const char *service,
                                 const int64_t *starts, size_t n, int *used)
{
    char k_slots[200];
    cb_key(k_slots, sizeof k_slots, tenant, "slots", service);
    const char **argv = eg_xcalloc(n + 2, sizeof *argv);
    char(*fields)[24] = eg_xcalloc(n ? n : 1, sizeof *fields);
    argv[0] = "HMGET";
    argv[1] = k_slots;
    for (size_t i = 0; i < n; i++) {
        snprintf(fields[i], sizeof fields[i], "%" PRId64, starts[i]);
        argv[i + 2] = fields[i];
    }
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(store, (int)n + 2, argv, NULL, &r);
    if (st == EG_OK && (r->type != EG_REPLY_ARRAY || r->elements != n))
        st = EG_EPROTO;
    for (size_t i = 0; st == EG_OK && i < n; i++)
        used[i] = r->element[i]->type == EG_REPLY_STRING ? atoi(r->element[i]->str) : 0;
    eg_reply_free(r);
    free(argv);
    free(fields);
    return st;
}

/* The earliest score of a service's due and watch ZSETs (one pipelined round trip). *has is
 * false when both are empty. */
static eg_status_t first_due(eg_store_t *store, const char *tenant, const char *service, bool *has,
                             char *score, size_t scorelen)
{
    char k_due[200], k_w[200];
    cb_key(k_due, sizeof k_due, tenant, "due", service);
    cb_key(k_w, sizeof k_w, tenant, "w", service);
    const char *a[] = {"ZRANGE", k_due, "0", "0", "WITHSCORES"};
    const char *b[] = {"ZRANGE", k_w, "0", "0", "WITHSCORES"};
    const char *const *cmds[] = {a, b};
    int argcs[] = {5, 5};
    eg_reply_t *r[2] = {NULL, NULL};
    eg_status_t st = eg_store_pipeline(store, 2, argcs, cmds, r);
    *has = false;
    long long best = 0;
    for (int i = 0; i < 2 && st == EG_OK; i++) {
        if (r[i]->type == EG_REPLY_ERROR)
            st = EG_EPROTO;
        else if (r[i]->type == EG_REPLY_ARRAY && r[i]->elements == 2) {
            long long v = strtoll(r[i]->element[1]->str, NULL, 10);
            if (!*has || v < best)
                best = v;
            *has = true;
        }
    }
    eg_reply_free(r[0]);
    eg_reply_free(r[1]);
    snprintf(score, scorelen, "%lld", best);
    return st;
}

/* Double-checked refresh: set the entry to the service's current minimum, then read the minimum
 * again and lower the entry if a write slipped in meanwhile. A write's own ZADD LT comes after
 * its script, so whichever order the two run in, the entry ends at or below the true minimum:
 * a due callback is never forgotten (at worst a dispatcher looks once in vain). */
eg_status_t cb_store_refresh_due(eg_store_t *store, const char *tenant, const char *service)
{
    char member[200], score[32];
    snprintf(member, sizeof member, "%s|%s", tenant, service);
    eg_status_t st = EG_OK;
    for (int pass = 0; pass < 2 && st == EG_OK; pass++) {
        bool has = false;
        eg_reply_t *w = NULL;
        st = first_due(store, tenant, service, &has, score, sizeof score);
        if (st != EG_OK)
            break;
        if (has && pass == 0) {
            const char *set[] = {"ZADD", CB_KEY_DUE_INDEX, score, member};
            st = eg_store_command(store, 4, set, NULL, &w);
        } else if (has) {
            const char *lower[] = {"ZADD", CB_KEY_DUE_INDEX, "LT", score, member};
            st = eg_store_command(store, 5, lower, NULL, &w);
        } else if (pass == 0) {
            const char *rem[] = {"ZREM", CB_KEY_DUE_INDEX, member};
            st = eg_store_command(store, 3, rem, NULL, &w);
        }
        eg_reply_free(w);
    }
    return st;
}

/* Ids of one ZSET with a score up to now, appended to ids. */
static eg_status_t ids_until(eg_store_t *store, const char *key, int64_t now, int max, char **ids,
                             int *count)
{
    char now_s[32], max_s[16];
    snprintf(now_s, sizeof now_s, "%" PRId64, now);
    snprintf(max_s, sizeof max_s, "%d", max - *count);
    const char *argv[] = {"ZRANGEBYSCORE", key, "-inf", now_s, "LIMIT", "0", max_s};
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(store, 7, argv, NULL, &r);
    if (st == EG_OK && r->type == EG_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements && *count < max; i++)
            ids[(*count)++] = eg_xstrndup(r->element[i]->str, r->element[i]->len);
    }
    eg_reply_free(r);
    return st;
}

eg_status_t cb_store_due_ids(eg_store_t *store, const char *tenant, const char *service,
                             int64_t now, int max, char **ids, int *count)
{
    char k_due[200], k_w[200];
    cb_key(k_due, sizeof k_due, tenant, "due", service);
    cb_key(k_w, sizeof k_w, tenant, "w", service);
    *count = 0;
    eg_status_t st = ids_until(store, k_due, now, max, ids, count);
    if (st == EG_OK && *count < max)
        st = ids_until(store, k_w, now, max, ids, count);
    return st;
}

eg_status_t cb_store_forget_due(eg_store_t *store, const char *tenant, const char *service,
                                const char *id)
{
    char k_due[200], k_w[200];
    cb_key(k_due, sizeof k_due, tenant, "due", service);
    cb_key(k_w, sizeof k_w, tenant, "w", service);
    const char *a[] = {"ZREM", k_due, id}, *b[] = {"ZREM", k_w, id};
    const char *const *cmds[] = {a, b};
    int argcs[] = {3, 3};
    eg_reply_t *r[2] = {NULL, NULL};
    eg_status_t st = eg_store_pipeline(store, 2, argcs, cmds, r);
    eg_reply_free(r[0]);
    eg_reply_free(r[1]);
    return st;
}

eg_status_t cb_store_reschedule(eg_store_t *store, const cb_scripts_t *scripts, const char *old,
                                size_t old_len, const Eg__Callback *prev, const Eg__Callback *next,
                                int capacity, const Eg__Event *ev, int *used, cb_followup_t *f)
{
    char k_cb[160], k_due[200], k_slots[200], k_out[120], k_num[200], score[32], ttl[32],
        old_slot[32], new_slot[32], cap[16];
    cb_key(k_num, sizeof k_num, next->tenant_id, "n", next->phone);
    cb_key(k_cb, sizeof k_cb, next->tenant_id, "cb", next->id);
    cb_key(k_due, sizeof k_due, next->tenant_id, "due", next->service);
    cb_key(k_slots, sizeof k_slots, next->tenant_id, "slots", next->service);
    cb_key(k_out, sizeof k_out, next->tenant_id, "outbox", NULL);
    snprintf(score, sizeof score, "%" PRId64, index_score(next));
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms(next, next->updated_ms));
    old_slot[0] = '\0';
    if (prev->slot_start_ms && prev->attempts == 0) /* a retry holds no place */
        snprintf(old_slot, sizeof old_slot, "%" PRId64, prev->slot_start_ms);
    snprintf(new_slot, sizeof new_slot, "%" PRId64, next->slot_start_ms);
    snprintf(cap, sizeof cap, "%d", capacity);
    size_t blob_len, ev_len;
    uint8_t *blob = pack_cb(next, &blob_len);
    uint8_t *evb = pack_ev(ev, &ev_len);
    const char *argv[] = {k_cb,     k_due,        k_slots,  k_out,        k_num,
                          old,      (char *)blob, next->id, score,        ttl,
                          old_slot, new_slot,     cap,      ev->event_id, (char *)evb};
    enum { N_KEYS = 5, OLD = 5, BLOB = 6, EVB = 14 };
    size_t lens[sizeof argv / sizeof *argv];
    for (size_t i = 0; i < sizeof argv / sizeof *argv; i++)
        lens[i] = (i == OLD || i == BLOB || i == EVB) ? 0 : strlen(argv[i]);
    lens[OLD] = old_len;
    lens[BLOB] = blob_len;
    lens[EVB] = ev_len;
    eg_reply_t *r = NULL;
    eg_status_t st = eval_with(store, scripts->reschedule, N_KEYS,
                               (int)(sizeof argv / sizeof *argv), argv, lens, &r, f);
    if (st == EG_OK) {
        if (r->type == EG_REPLY_INTEGER)
            st = r->integer == 1 ? EG_OK : EG_ECONFLICT;
        else if (r->type == EG_REPLY_ARRAY && r->elements == 2) {
            if (used)
                *used = (int)r->element[1]->integer;
            st = EG_EFULL;
        } else {
            st = EG_EPROTO;
        }
    }
    eg_reply_free(r);
    free(blob);
    free(evb);
    return st;
}

typedef struct {
    const char *id;
    size_t len;
    long long created;
} phone_id_t;

static int newest_first(const void *a, const void *b)
{
    const phone_id_t *x = a, *y = b;
    return x->created < y->created ? 1 : x->created > y->created ? -1 : 0;
}

eg_status_t cb_store_phone_ids(eg_store_t *store, const char *tenant, const char *phone, int max,
                               char **ids, int *count)
{
    char k_num[200];
    cb_key(k_num, sizeof k_num, tenant, "n", phone);
    const char *argv[] = {"HGETALL", k_num};
    eg_reply_t *r = NULL;
    *count = 0;
    eg_status_t st = eg_store_command(store, 2, argv, NULL, &r);
    if (st == EG_OK && r->type == EG_REPLY_ARRAY) {
        phone_id_t *all = eg_xcalloc(r->elements / 2 + 1, sizeof *all);
        size_t n = 0;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            const eg_reply_t *f = r->element[i];
            if (f->len > 2 && f->str[0] == 'i' && f->str[1] == ':') {
                all[n].id = f->str + 2;
                all[n].len = f->len - 2;
                all[n].created = strtoll(r->element[i + 1]->str, NULL, 10);
                n++;
            }
        }
        qsort(all, n, sizeof *all, newest_first);
        for (size_t i = 0; i < n && *count < max; i++)
            ids[(*count)++] = eg_xstrndup(all[i].id, all[i].len);
        free(all);
    }
    eg_reply_free(r);
    return st;
}
