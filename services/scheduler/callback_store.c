/* Callback records in Redis (the key layout is in store_keys.h). Three Lua scripts do all the
 * writing (lua/create.lua, lua/transition.lua, lua/reschedule.lua; their headers name their
 * KEYS, ARGV and return codes, and the build turns those into the *_lua.h enums used here);
 * each is one atomic step that changes the record, its indexes, its slot counter and appends
 * the event to the tenant's outbox, so a state change and its event are never apart (the
 * outbox relay publishes the event later). */
#include "callback_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/compress.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "create_lua.h"
#include "reschedule_lua.h"
#include "store_keys.h"
#include "transition_lua.h"

eg_status_t cb_store_init(eg_store_t *store, cb_scripts_t *scripts)
{
    eg_status_t st = eg_store_script_add(store, create_lua, &scripts->create);
    if (st == EG_OK)
        st = eg_store_script_add(store, transition_lua, &scripts->transition);
    if (st == EG_OK)
        st = eg_store_script_add(store, reschedule_lua, &scripts->reschedule);
    return st;
}

/* The index a new callback in this state goes into: the due ZSET when it is scheduled, else
 * the queue (PROCESSING has left the queue: an agent has it; a new one is never there). */
static store_family_t index_family(Eg__State s)
{
    return s == EG__STATE__STATE_SCHEDULED ? STORE_DUE : STORE_QUEUE;
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
static const char *daily_key(store_keys_t *ks, const Eg__Callback *cb)
{
    return store_keys_daily(ks, cb->service, cb->updated_ms / 86400000);
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
    store_due_member(f->member, cb->tenant_id, cb->service);
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
    f->sadd[1] = STORE_KEY_OUTBOX_PENDING;
    f->sadd[2] = f->tenant;
    f->zadd[0] = "ZADD";
    f->zadd[1] = STORE_KEY_DUE_INDEX;
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
    char score[32], ttl[32], slot[32], cap[16], now[32], max_active[16], max_day[16], idem_ttl[32],
        watch[32];
    bool idem = opts->idem_key && *opts->idem_key;
    memset(res, 0, sizeof *res);
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
    store_keys_t ks;
    store_keys_init(&ks, cb->tenant_id);
    const char *argv[CREATE_ARGC] = {
        [CREATE_KEY_CB] = store_keys_add(&ks, STORE_RECORD, cb->id),
        [CREATE_KEY_INDEX] = store_keys_add(&ks, index_family(cb->state), cb->service),
        [CREATE_KEY_SLOTS] = store_keys_add(&ks, STORE_SLOTS, cb->service),
        [CREATE_KEY_OUTBOX] = store_keys_add(&ks, STORE_OUTBOX, NULL),
        [CREATE_KEY_NUMBER] = store_keys_add(&ks, STORE_NUMBER, cb->phone),
        /* Without an Idempotency-Key the script does not touch it: a placeholder of its slot. */
        [CREATE_KEY_IDEM] = store_keys_add(&ks, STORE_IDEM, idem ? opts->idem_key : "-"),
        [CREATE_KEY_WATCH] = store_keys_add(&ks, STORE_WATCH, cb->service),
        [CREATE_KEY_DAILY] = daily_key(&ks, cb),
        [CREATE_ARG_BLOB] = (const char *)blob,
        [CREATE_ARG_ID] = cb->id,
        [CREATE_ARG_SCORE] = score,
        [CREATE_ARG_TTL_MS] = ttl,
        [CREATE_ARG_SLOT] = slot,
        [CREATE_ARG_CAPACITY] = cap,
        [CREATE_ARG_EVENT_ID] = ev->event_id,
        [CREATE_ARG_EVENT] = (const char *)evb,
        [CREATE_ARG_NOW_MS] = now,
        [CREATE_ARG_MAX_ACTIVE] = max_active,
        [CREATE_ARG_MAX_PER_DAY] = max_day,
        [CREATE_ARG_IDEM_TTL_MS] = idem_ttl,
        [CREATE_ARG_WATCH_SCORE] = watch,
        [CREATE_ARG_SERVICE] = cb->service,
    };
    size_t lens[CREATE_ARGC];
    static const int bytes_c[] = {CREATE_ARG_BLOB, CREATE_ARG_EVENT};
    store_script_lens(argv, lens, CREATE_ARGC, "create.lua", bytes_c, 2);
    lens[CREATE_ARG_BLOB] = blob_len;
    lens[CREATE_ARG_EVENT] = ev_len;
    eg_reply_t *r = NULL;
    eg_status_t st =
        eval_with(store, scripts->create, CREATE_NKEYS, CREATE_ARGC, argv, lens, &r, f);
    if (st != EG_OK)
        goto out;
    if (r->type == EG_REPLY_INTEGER && r->integer == CREATE_RET_CREATED) {
        st = EG_OK;
    } else if (r->type == EG_REPLY_INTEGER && r->integer == CREATE_RET_EXISTS) {
        st = EG_ECONFLICT;
    } else if (r->type == EG_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == EG_REPLY_INTEGER) {
        long long code = r->element[0]->integer;
        const eg_reply_t *v = r->element[1];
        if (code == CREATE_RET_REPLAY && v->type == EG_REPLY_STRING) {
            res->replayed = true;
            snprintf(res->existing_id, sizeof res->existing_id, "%s", v->str);
            st = EG_OK;
        } else if (code == CREATE_RET_SLOT_FULL && v->type == EG_REPLY_INTEGER) {
            res->used = res->count = (int)v->integer;
            st = EG_EFULL;
        } else if ((code == CREATE_RET_PER_DAY || code == CREATE_RET_ACTIVE) &&
                   v->type == EG_REPLY_INTEGER) {
            res->count = (int)v->integer;
            res->limit_kind = code == CREATE_RET_PER_DAY ? CB_LIMIT_PER_DAY : CB_LIMIT_ACTIVE;
            st = EG_ELIMIT;
        } else {
            st = EG_EPROTO;
        }
    } else {
        st = EG_EPROTO;
    }
out:
    eg_reply_free(r);
    store_keys_free(&ks);
    free(blob);
    free(evb);
    return st;
}

eg_status_t cb_store_get(eg_store_t *store, const char *tenant, const char *id, Eg__Callback **cb,
                         char **blob, size_t *blob_len)
{
    char *k_cb = store_key(STORE_RECORD, tenant, id);
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
    free(k_cb);
    return st;
}

eg_status_t cb_store_transition(eg_store_t *store, const cb_scripts_t *scripts, const char *old,
                                size_t old_len, const Eg__Callback *prev, const Eg__Callback *next,
                                const Eg__Event *ev, int release_slot, cb_followup_t *f)
{
    char live_field[140], ttl[32], slot[32], now[32];
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
    snprintf(now, sizeof now, "%" PRId64, next->updated_ms);
    bool processing = next->state == EG__STATE__STATE_PROCESSING,
         was_processing = prev->state == EG__STATE__STATE_PROCESSING;
    const char *agent = processing && !was_processing   ? "+"
                        : !processing && was_processing ? "-"
                                                        : "";
    bool completed =
        next->state == EG__STATE__STATE_COMPLETED && prev->state != EG__STATE__STATE_COMPLETED;
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms(next, next->updated_ms));
    slot[0] = '\0';
    if (release_slot && prev->slot_start_ms)
        snprintf(slot, sizeof slot, "%" PRId64, prev->slot_start_ms);
    live_field[0] = '\0';
    if (completed)
        snprintf(live_field, sizeof live_field, "a:%s", next->service);

    size_t blob_len, ev_len;
    uint8_t *blob = pack_cb(next, &blob_len);
    uint8_t *evb = pack_ev(ev, &ev_len);
    store_keys_t ks;
    store_keys_init(&ks, next->tenant_id);
    const char *argv[TRANSITION_ARGC] = {
        [TRANSITION_KEY_CB] = store_keys_add(&ks, STORE_RECORD, next->id),
        [TRANSITION_KEY_DUE] = store_keys_add(&ks, STORE_DUE, next->service),
        [TRANSITION_KEY_QUEUE] = store_keys_add(&ks, STORE_QUEUE, next->service),
        [TRANSITION_KEY_WATCH] = store_keys_add(&ks, STORE_WATCH, next->service),
        [TRANSITION_KEY_SLOTS] = store_keys_add(&ks, STORE_SLOTS, next->service),
        [TRANSITION_KEY_OUTBOX] = store_keys_add(&ks, STORE_OUTBOX, NULL),
        [TRANSITION_KEY_NUMBER] = store_keys_add(&ks, STORE_NUMBER, next->phone),
        [TRANSITION_KEY_SERVED] = store_keys_add(&ks, STORE_SERVED, next->virtual_queue),
        [TRANSITION_KEY_STATS] = store_keys_add(&ks, STORE_STATS, next->service),
        [TRANSITION_KEY_DAILY] = daily_key(&ks, next),
        [TRANSITION_ARG_OLD] = old,
        [TRANSITION_ARG_BLOB] = (const char *)blob,
        [TRANSITION_ARG_ID] = next->id,
        [TRANSITION_ARG_DUE_OP] = due.op,
        [TRANSITION_ARG_DUE_SCORE] = due.score,
        [TRANSITION_ARG_QUEUE_OP] = q.op,
        [TRANSITION_ARG_QUEUE_SCORE] = q.score,
        [TRANSITION_ARG_WATCH_OP] = watch.op,
        [TRANSITION_ARG_WATCH_SCORE] = watch.score,
        [TRANSITION_ARG_TTL_MS] = ttl,
        [TRANSITION_ARG_SLOT] = slot,
        [TRANSITION_ARG_EVENT_ID] = ev->event_id,
        [TRANSITION_ARG_EVENT] = (const char *)evb,
        [TRANSITION_ARG_LIVE_FIELD] = live_field,
        [TRANSITION_ARG_AGENT] = agent,
        [TRANSITION_ARG_COMPLETED] = completed ? "1" : "",
        [TRANSITION_ARG_NOW_MS] = now,
    };
    size_t lens[TRANSITION_ARGC];
    static const int bytes_t[] = {TRANSITION_ARG_OLD, TRANSITION_ARG_BLOB, TRANSITION_ARG_EVENT};
    store_script_lens(argv, lens, TRANSITION_ARGC, "transition.lua", bytes_t, 3);
    lens[TRANSITION_ARG_OLD] = old_len;
    lens[TRANSITION_ARG_BLOB] = blob_len;
    lens[TRANSITION_ARG_EVENT] = ev_len;
    eg_reply_t *r = NULL;
    eg_status_t st =
        eval_with(store, scripts->transition, TRANSITION_NKEYS, TRANSITION_ARGC, argv, lens, &r, f);
    if (st == EG_OK && r->type != EG_REPLY_INTEGER)
        st = EG_EPROTO;
    else if (st == EG_OK)
        st = r->integer == TRANSITION_RET_DONE ? EG_OK : EG_ECONFLICT;
    eg_reply_free(r);
    store_keys_free(&ks);
    free(blob);
    free(evb);
    return st;
}

int cb_store_queue_position(eg_store_t *store, const Eg__Callback *cb)
{
    if (!in_queue(cb->state))
        return 0;
    char *k_q = store_key(STORE_QUEUE, cb->tenant_id, cb->service);
    const char *argv[] = {"ZRANK", k_q, cb->id};
    eg_reply_t *r = NULL;
    int pos = 0;
    if (eg_store_command(store, 3, argv, NULL, &r) == EG_OK && r->type == EG_REPLY_INTEGER)
        pos = (int)r->integer + 1;
    eg_reply_free(r);
    free(k_q);
    return pos;
}

eg_status_t cb_store_slot_counts(eg_store_t *store, const char *tenant, const char *service,
                                 const int64_t *starts, size_t n, int *used)
{
    char *k_slots = store_key(STORE_SLOTS, tenant, service);
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
    free(k_slots);
    return st;
}

eg_status_t cb_store_reschedule(eg_store_t *store, const cb_scripts_t *scripts, const char *old,
                                size_t old_len, const Eg__Callback *prev, const Eg__Callback *next,
                                int capacity, const Eg__Event *ev, int *used, cb_followup_t *f)
{
    char score[32], ttl[32], old_slot[32], new_slot[32], cap[16];
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
    store_keys_t ks;
    store_keys_init(&ks, next->tenant_id);
    const char *argv[RESCHEDULE_ARGC] = {
        [RESCHEDULE_KEY_CB] = store_keys_add(&ks, STORE_RECORD, next->id),
        [RESCHEDULE_KEY_DUE] = store_keys_add(&ks, STORE_DUE, next->service),
        [RESCHEDULE_KEY_SLOTS] = store_keys_add(&ks, STORE_SLOTS, next->service),
        [RESCHEDULE_KEY_OUTBOX] = store_keys_add(&ks, STORE_OUTBOX, NULL),
        [RESCHEDULE_KEY_NUMBER] = store_keys_add(&ks, STORE_NUMBER, next->phone),
        [RESCHEDULE_ARG_OLD] = old,
        [RESCHEDULE_ARG_BLOB] = (const char *)blob,
        [RESCHEDULE_ARG_ID] = next->id,
        [RESCHEDULE_ARG_SCORE] = score,
        [RESCHEDULE_ARG_TTL_MS] = ttl,
        [RESCHEDULE_ARG_OLD_SLOT] = old_slot,
        [RESCHEDULE_ARG_NEW_SLOT] = new_slot,
        [RESCHEDULE_ARG_CAPACITY] = cap,
        [RESCHEDULE_ARG_EVENT_ID] = ev->event_id,
        [RESCHEDULE_ARG_EVENT] = (const char *)evb,
    };
    size_t lens[RESCHEDULE_ARGC];
    static const int bytes_r[] = {RESCHEDULE_ARG_OLD, RESCHEDULE_ARG_BLOB, RESCHEDULE_ARG_EVENT};
    store_script_lens(argv, lens, RESCHEDULE_ARGC, "reschedule.lua", bytes_r, 3);
    lens[RESCHEDULE_ARG_OLD] = old_len;
    lens[RESCHEDULE_ARG_BLOB] = blob_len;
    lens[RESCHEDULE_ARG_EVENT] = ev_len;
    eg_reply_t *r = NULL;
    eg_status_t st =
        eval_with(store, scripts->reschedule, RESCHEDULE_NKEYS, RESCHEDULE_ARGC, argv, lens, &r, f);
    if (st == EG_OK) {
        if (r->type == EG_REPLY_INTEGER)
            st = r->integer == RESCHEDULE_RET_MOVED ? EG_OK : EG_ECONFLICT;
        else if (r->type == EG_REPLY_ARRAY && r->elements == 2 &&
                 r->element[0]->type == EG_REPLY_INTEGER &&
                 r->element[0]->integer == RESCHEDULE_RET_SLOT_FULL &&
                 r->element[1]->type == EG_REPLY_INTEGER) {
            if (used)
                *used = (int)r->element[1]->integer;
            st = EG_EFULL;
        } else {
            st = EG_EPROTO;
        }
    }
    eg_reply_free(r);
    store_keys_free(&ks);
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
    char *k_num = store_key(STORE_NUMBER, tenant, phone);
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
    free(k_num);
    return st;
}

eg_status_t cb_store_erase_number(eg_store_t *store, const char *tenant, const char *phone,
                                  char **ids, Eg__Callback **cbs, int n, int32_t *deleted)
{
    /* Per record: DEL it and, when it was read, ZREM it from its service's three ZSETs; then
     * DEL the number's hash. */
    size_t max = (size_t)n * 4 + 1, k = 0;
    const char *(*argv)[3] = eg_xcalloc(max, sizeof *argv);
    const char *const **cmds = eg_xcalloc(max, sizeof *cmds);
    int *argcs = eg_xcalloc(max, sizeof *argcs);
    bool *is_record = eg_xcalloc(max, sizeof *is_record);
    store_keys_t ks;
    store_keys_init(&ks, tenant);
    static const store_family_t indexes[] = {STORE_DUE, STORE_QUEUE, STORE_WATCH};
    for (int i = 0; i < n; i++) {
        argv[k][0] = "DEL";
        argv[k][1] = store_keys_add(&ks, STORE_RECORD, ids[i]);
        argcs[k] = 2;
        is_record[k++] = true;
        for (size_t j = 0; cbs[i] && j < sizeof indexes / sizeof *indexes; j++) {
            argv[k][0] = "ZREM";
            argv[k][1] = store_keys_add(&ks, indexes[j], cbs[i]->service);
            argv[k][2] = ids[i];
            argcs[k++] = 3;
        }
    }
    argv[k][0] = "DEL";
    argv[k][1] = store_keys_add(&ks, STORE_NUMBER, phone);
    argcs[k++] = 2;
    for (size_t i = 0; i < k; i++)
        cmds[i] = argv[i];
    eg_reply_t **replies = eg_xcalloc(k, sizeof *replies);
    eg_status_t st = eg_store_pipeline(store, k, argcs, cmds, replies);
    *deleted = 0;
    for (size_t i = 0; i < k; i++) {
        if (st == EG_OK && replies[i]->type == EG_REPLY_ERROR)
            st = EG_EPROTO;
        if (st == EG_OK && is_record[i] && replies[i]->type == EG_REPLY_INTEGER)
            *deleted += (int32_t)replies[i]->integer;
        eg_reply_free(replies[i]);
    }
    free(replies);
    free(argv);
    free(cmds);
    free(argcs);
    free(is_record);
    store_keys_free(&ks);
    return st;
}
