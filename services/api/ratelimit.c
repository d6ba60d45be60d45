/* Per-key rate limits (API.md: default 2,000 requests/s with a burst of 4,000, settable per
 * key, 0 = unlimited), at no Redis cost per request.
 *
 * Each api replica keeps one token bucket per key id in memory: it refills at the key's rate
 * and holds at most RL_BURST_FACTOR x rate tokens; a request takes one token or is refused with
 * 429 and a Retry-After of the whole seconds until the next token. A key's first request finds
 * a full bucket. Keys with rate 0 have no bucket at all.
 *
 * Replicas share the limit through Redis, approximately: every RL_SYNC_INTERVAL_MS a thread of
 * its own (with its own Redis connection) adds, for every key this replica served recently, the
 * number of requests it allowed since the last round to one counter per key,
 * `eg:rl:<key id>` (INCRBY, then PEXPIRE 60 s so idle counters disappear), all keys in one
 * pipelined round trip. INCRBY answers the cluster-wide total; its growth since this replica's
 * previous round, minus what this replica added, is what the other replicas served meanwhile,
 * and it is taken out of the local bucket (which may go negative, down to -burst). Every
 * bucket thus refills at the key's rate and is drained by the whole cluster's use, so the
 * cluster as a whole serves about the key's rate. What it is not:
 *   - exact between rounds: each replica may serve up to its own tokens before it learns what
 *     the others did, so a burst can reach (replicas x burst) for a quarter of a second;
 *   - exact across a counter that expired (every replica idle for 60 s) or a Redis outage:
 *     that round charges nothing, and while Redis is down every replica limits on its own.
 * A replica forgets a key's bucket after RL_IDLE_MS without a request.
 *
 * The table is a fixed array of chains under one mutex; a decision is a hash, a short chain
 * walk and a little arithmetic, with no I/O. */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "engage/store.h"
#include "engage/timeutil.h"

#define RL_BUCKETS 4096
#define RL_IDLE_MS 30000
#define RL_COUNTER_TTL_MS "60000"
#define RL_SYNC_BATCH 512 /* keys per pipelined round trip */
#define RL_REDIS_TIMEOUT_MS 500
#define RL_RECONNECT_MS 1000

/* ---- the bucket ---- */

static double burst_of(int rate)
{
    return (double)rate * RL_BURST_FACTOR;
}

void rl_bucket_init(rl_bucket_t *b, int rate, int64_t now_ms)
{
    b->rate = rate;
    b->tokens = burst_of(rate);
    b->last_ms = now_ms;
}

void rl_bucket_refill(rl_bucket_t *b, int rate, int64_t now_ms)
{
    b->rate = rate;
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * (double)rate / 1000.0;
        b->last_ms = now_ms;
    }
    if (b->tokens > burst_of(rate))
        b->tokens = burst_of(rate);
}

int rl_retry_after_s(double tokens, int rate)
{
    if (rate <= 0 || tokens >= 1.0)
        return 1;
    double s = ceil((1.0 - tokens) / (double)rate);
    if (s < 1.0)
        return 1;
    if (s > 3600.0)
        return 3600;
    return (int)s;
}

bool rl_bucket_take(rl_bucket_t *b, int rate, int64_t now_ms, int *retry_after_s)
{
    rl_bucket_refill(b, rate, now_ms);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    if (retry_after_s)
        *retry_after_s = rl_retry_after_s(b->tokens, rate);
    return false;
}

void rl_bucket_charge(rl_bucket_t *b, int64_t n)
{
    if (n <= 0)
        return;
    b->tokens -= (double)n;
    if (b->tokens < -burst_of(b->rate))
        b->tokens = -burst_of(b->rate);
}

/* ---- the table ---- */

typedef struct entry {
    struct entry *next;
    char key_id[33];
    rl_bucket_t bucket;
    int64_t last_used_ms;
    int64_t unsynced;   /* allowed here since the last sync round */
    int64_t seen_total; /* the cluster counter after this replica's last round */
    bool has_seen;
} entry_t;

struct ratelimit {
    pthread_mutex_t lock;
    entry_t *buckets[RL_BUCKETS];

    /* the sync thread */
    pthread_t thread;
    bool running;
    bool stopping;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    char *redis_url;
};

static size_t slot_of(const char *key_id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = key_id; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    return (size_t)(h % RL_BUCKETS);
}

ratelimit_t *ratelimit_new(void)
{
    ratelimit_t *rl = eg_xcalloc(1, sizeof *rl);
    pthread_mutex_init(&rl->lock, NULL);
    pthread_mutex_init(&rl->stop_lock, NULL);
    pthread_cond_init(&rl->stop_cond, NULL);
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl)
        return;
    if (rl->running) {
        pthread_mutex_lock(&rl->stop_lock);
        rl->stopping = true;
        pthread_cond_signal(&rl->stop_cond);
        pthread_mutex_unlock(&rl->stop_lock);
        pthread_join(rl->thread, NULL);
    }
    for (size_t i = 0; i < RL_BUCKETS; i++) {
        while (rl->buckets[i]) {
            entry_t *e = rl->buckets[i];
            rl->buckets[i] = e->next;
            free(e);
        }
    }
    free(rl->redis_url);
    pthread_cond_destroy(&rl->stop_cond);
    pthread_mutex_destroy(&rl->stop_lock);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

/* The entry of key_id, or NULL. Caller holds the lock. */
static entry_t *find(ratelimit_t *rl, const char *key_id)
{
    for (entry_t *e = rl->buckets[slot_of(key_id)]; e; e = e->next)
        if (strcmp(e->key_id, key_id) == 0)
            return e;
    return NULL;
}

bool ratelimit_take(ratelimit_t *rl, const char *key_id, int rate, int64_t now_ms,
                    int *retry_after_s)
{
    if (rate <= 0)
        return true;
    char id[33];
    snprintf(id, sizeof id, "%s", key_id);
    pthread_mutex_lock(&rl->lock);
    entry_t *e = find(rl, id);
    if (!e) {
        e = eg_xcalloc(1, sizeof *e);
        memcpy(e->key_id, id, sizeof e->key_id);
        rl_bucket_init(&e->bucket, rate, now_ms);
        size_t slot = slot_of(id);
        e->next = rl->buckets[slot];
        rl->buckets[slot] = e;
    }
    e->last_used_ms = now_ms;
    bool ok = rl_bucket_take(&e->bucket, rate, now_ms, retry_after_s);
    if (ok)
        e->unsynced++;
    pthread_mutex_unlock(&rl->lock);
    return ok;
}

size_t ratelimit_sync_collect(ratelimit_t *rl, int64_t now_ms, rl_sync_item_t **items)
{
    size_t n = 0, cap = 16;
    rl_sync_item_t *out = eg_xmalloc(cap * sizeof *out);
    pthread_mutex_lock(&rl->lock);
    for (size_t i = 0; i < RL_BUCKETS; i++) {
        entry_t **link = &rl->buckets[i];
        while (*link) {
            entry_t *e = *link;
            if (now_ms - e->last_used_ms > RL_IDLE_MS) {
                *link = e->next;
                free(e);
                continue;
            }
            if (n == cap) {
                cap *= 2;
                out = eg_xrealloc(out, cap * sizeof *out);
            }
            memcpy(out[n].key_id, e->key_id, sizeof out[n].key_id);
            out[n].used = e->unsynced;
            out[n].total = 0;
            out[n].has_total = false;
            e->unsynced = 0;
            n++;
            link = &e->next;
        }
    }
    pthread_mutex_unlock(&rl->lock);
    *items = out;
    return n;
}

void ratelimit_sync_apply(ratelimit_t *rl, const rl_sync_item_t *items, size_t n)
{
    pthread_mutex_lock(&rl->lock);
    for (size_t i = 0; i < n; i++) {
        if (!items[i].has_total)
            continue;
        entry_t *e = find(rl, items[i].key_id);
        if (!e)
            continue;
        int64_t others = e->has_seen ? items[i].total - e->seen_total - items[i].used : 0;
        /* A counter lower than before expired and started again: charge nothing this round. */
        if (others > 0)
            rl_bucket_charge(&e->bucket, others);
        e->seen_total = items[i].total;
        e->has_seen = true;
    }
    pthread_mutex_unlock(&rl->lock);
}

/* ---- the sync thread ---- */

/* Push one batch of items to Redis and read the totals back (one round trip). */
static eg_status_t push_batch(eg_store_t *store, rl_sync_item_t *items, size_t n)
{
    size_t ncmd = 2 * n;
    int *argcs = eg_xmalloc(ncmd * sizeof *argcs);
    const char *const **cmds = eg_xmalloc(ncmd * sizeof *cmds);
    const char **argv = eg_xmalloc(ncmd * 3 * sizeof *argv);
    char(*keys)[48] = eg_xmalloc(n * sizeof *keys);
    char(*counts)[24] = eg_xmalloc(n * sizeof *counts);
    eg_reply_t **replies = eg_xcalloc(ncmd, sizeof *replies);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "eg:rl:%s", items[i].key_id);
        snprintf(counts[i], sizeof counts[i], "%lld", (long long)items[i].used);
        const char **incr = &argv[6 * i], **expire = &argv[6 * i + 3];
        incr[0] = "INCRBY";
        incr[1] = keys[i];
        incr[2] = counts[i];
        expire[0] = "PEXPIRE";
        expire[1] = keys[i];
        expire[2] = RL_COUNTER_TTL_MS;
        argcs[2 * i] = 3;
        argcs[2 * i + 1] = 3;
        cmds[2 * i] = incr;
        cmds[2 * i + 1] = expire;
    }
    eg_status_t st = eg_store_pipeline(store, ncmd, argcs, cmds, replies);
    for (size_t i = 0; st == EG_OK && i < n; i++) {
        const eg_reply_t *r = replies[2 * i];
        if (r && r->type == EG_REPLY_INTEGER) {
            items[i].total = r->integer;
            items[i].has_total = true;
        }
    }
    for (size_t i = 0; i < ncmd; i++)
        eg_reply_free(replies[i]);
    free(replies);
    free(counts);
    free(keys);
    free(argv);
    free(cmds);
    free(argcs);
    return st;
}

/* Sleep until the next round; false when asked to stop. */
static bool wait_round(ratelimit_t *rl)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)RL_SYNC_INTERVAL_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
    }
    pthread_mutex_lock(&rl->stop_lock);
    while (!rl->stopping) {
        if (pthread_cond_timedwait(&rl->stop_cond, &rl->stop_lock, &until) != 0)
            break;
    }
    bool go_on = !rl->stopping;
    pthread_mutex_unlock(&rl->stop_lock);
    return go_on;
}

static void *sync_main(void *arg)
{
    ratelimit_t *rl = arg;
    eg_store_t *store = NULL;
    int64_t next_connect = 0;
    bool healthy = true; /* log each change between synced and local-only once */
    while (wait_round(rl)) {
        int64_t now = eg_mono_ms();
        if (!store && now >= next_connect) {
            if (eg_store_open(&store, rl->redis_url, RL_REDIS_TIMEOUT_MS) != EG_OK)
                next_connect = now + RL_RECONNECT_MS;
        }
        rl_sync_item_t *items = NULL;
        size_t n = ratelimit_sync_collect(rl, now, &items);
        eg_status_t st = store ? EG_OK : EG_EUNAVAIL;
        for (size_t i = 0; st == EG_OK && i < n; i += RL_SYNC_BATCH)
            st = push_batch(store, items + i, n - i < RL_SYNC_BATCH ? n - i : RL_SYNC_BATCH);
        ratelimit_sync_apply(rl, items, n);
        free(items);
        if (st != EG_OK && healthy)
            eg_log_warn("rate limits: Redis unreachable (%s); limiting per replica until it is "
                        "back",
                        store ? eg_store_error(store) : "no connection");
        else if (st == EG_OK && !healthy)
            eg_log_info("rate limits: synced through Redis again");
        healthy = st == EG_OK;
    }
    eg_store_close(store);
    return NULL;
}

eg_status_t ratelimit_sync_start(ratelimit_t *rl, const char *redis_url)
{
    if (rl->running || !redis_url)
        return EG_EINVAL;
    rl->redis_url = eg_xstrdup(redis_url);
    if (pthread_create(&rl->thread, NULL, sync_main, rl) != 0) {
        free(rl->redis_url);
        rl->redis_url = NULL;
        return EG_EINTERNAL;
    }
    rl->running = true;
    return EG_OK;
}
