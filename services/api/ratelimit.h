/* Per-key rate limits in the api: token buckets kept in memory, synced across api replicas
 * through Redis a few times a second (see ratelimit.c for how and how approximate). */
#ifndef API_RATELIMIT_H
#define API_RATELIMIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage/status.h"

/** The rate limit of a key when its record says nothing else (API.md): requests/s. */
#define RL_DEFAULT_RATE 2000
/** The bucket holds this many seconds of the rate: the burst is RL_BURST_FACTOR x rate. */
#define RL_BURST_FACTOR 2
/** How often the sync thread talks to Redis. */
#define RL_SYNC_INTERVAL_MS 250

/* ---- the bucket math (plain functions over a plain struct; no clock of their own) ---- */

/** One token bucket. rate is requests per second (> 0); capacity RL_BURST_FACTOR x rate.
 *  tokens may go below zero when other replicas' use is charged to it (rl_bucket_charge). */
typedef struct {
    double tokens;
    int64_t last_ms; /**< when tokens was last brought up to date */
    int rate;
} rl_bucket_t;

/** A full bucket for rate (> 0) at now_ms. */
void rl_bucket_init(rl_bucket_t *b, int rate, int64_t now_ms);
/** Add what the time since last_ms earned, up to the burst. A changed rate takes effect here
 *  (tokens above the new burst are dropped). A clock that went backwards earns nothing. */
void rl_bucket_refill(rl_bucket_t *b, int rate, int64_t now_ms);
/** Take one token for a request at now_ms. true when allowed; otherwise false with
 *  *retry_after_s (may be NULL) = whole seconds until a token is there (at least 1). */
bool rl_bucket_take(rl_bucket_t *b, int rate, int64_t now_ms, int *retry_after_s);
/** Charge n requests served elsewhere (other replicas). Tokens do not go below -burst. */
void rl_bucket_charge(rl_bucket_t *b, int64_t n);
/** Whole seconds (>= 1) until a bucket holding tokens (< 1) at rate has one token. */
int rl_retry_after_s(double tokens, int rate);

/* ---- the table of buckets by key id ---- */

typedef struct ratelimit ratelimit_t;

/** An empty table (no Redis). Free with ratelimit_free. */
ratelimit_t *ratelimit_new(void);
/** Stop the sync thread (if started) and free. Accepts NULL. */
void ratelimit_free(ratelimit_t *rl);

/** Decide one request of key_id (borrowed; at most 32 bytes are used) whose limit is rate
 *  requests/s; rate <= 0 means unlimited and always allows without any bookkeeping. On false,
 *  *retry_after_s holds the Retry-After seconds (>= 1). now_ms is a monotonic clock (injected
 *  so tests control time). Thread-safe; no I/O. */
bool ratelimit_take(ratelimit_t *rl, const char *key_id, int rate, int64_t now_ms,
                    int *retry_after_s);

/** One key's share of a sync round: what this replica used since the last round, and (filled in
 *  by whoever talks to Redis) the cluster-wide counter after adding it. */
typedef struct {
    char key_id[33];
    int64_t used;
    int64_t total;
    bool has_total; /**< false: Redis did not answer for this key */
} rl_sync_item_t;

/** Start of a sync round at now_ms: forget keys unused for a while, and hand out every live key
 *  with its use since the last round (which is reset). *items is malloc'ed (caller frees); the
 *  count is returned. Thread-safe. */
size_t ratelimit_sync_collect(ratelimit_t *rl, int64_t now_ms, rl_sync_item_t **items);
/** End of a sync round: charge each key's bucket with what the other replicas used since the
 *  previous round (the growth of the cluster counter minus this replica's own share). Items
 *  without a total are skipped. Thread-safe. */
void ratelimit_sync_apply(ratelimit_t *rl, const rl_sync_item_t *items, size_t n);

/** Start the sync thread with its own Redis connection to redis_url (copied). When Redis is
 *  unreachable the limits stay local; the thread keeps trying. EG_OK once the thread runs. */
eg_status_t ratelimit_sync_start(ratelimit_t *rl, const char *redis_url);

#endif
