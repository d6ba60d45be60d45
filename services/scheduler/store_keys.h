/* The scheduler's Redis key families, named once. Only the store modules (callback_store.c,
 * due_store.c, outbox_store.c, callin_store.c, queue_stats.c, gdpr_store.c) build keys, and
 * only through this builder: a family is an enum value, never a string at a call site.
 *
 * Every key of a tenant shares the hash tag {t:<tenant>}, so one Lua script touches only keys
 * of one hash slot (and the same keys work on Redis Cluster):
 *
 *   eg:{t:T}:cb:<id>          STORE_RECORD   the packed Callback, expiring at desired time +
 *                                            14 days
 *   eg:{t:T}:due:<service>    STORE_DUE      ZSET id -> due time (ms) of SCHEDULED callbacks
 *   eg:{t:T}:q:<service>      STORE_QUEUE    ZSET id -> queue score of QUEUED and ROUTING
 *                                            callbacks (rank = position)
 *   eg:{t:T}:w:<service>      STORE_WATCH    ZSET id -> watch time (ms) of dialled callbacks
 *                                            (QUEUED, ROUTING, PROCESSING): the dispatcher
 *                                            gives up an attempt still there then
 *   eg:{t:T}:slots:<service>  STORE_SLOTS    HASH slot start (ms) -> callbacks booked in it
 *   eg:{t:T}:outbox           STORE_OUTBOX   STREAM of packed Events not yet relayed
 *   eg:{t:T}:n:<phone>        STORE_NUMBER   HASH per number: i:<id> -> created ms for every
 *                                            callback of the number (find, GDPR); a:<service>
 *                                            -> its live callbacks in the service;
 *                                            d:<service> -> the seconds of its creates there
 *                                            in the last 24 h (per-day limit)
 *   eg:{t:T}:idem:<key>       STORE_IDEM     the Idempotency-Key's callback id, for 24 hours
 *   eg:{t:T}:daily:<service>:<day>  STORE_DAILY  HASH created, completed on UTC day <day>
 *                                            (days since 1970; kept 3 days)
 *   eg:{t:T}:served:<vq>      STORE_SERVED   LIST of the last 32 times an agent took a
 *                                            callback of the virtual queue (EWT)
 *   eg:{t:T}:stats:<service>  STORE_STATS    HASH processing -> callbacks with an agent now
 *   eg:{t:T}:qstats:<vq>      STORE_QSTATS   HASH the latest queue.stats of a virtual queue
 *   eg:{t:T}:ci:req:<id>      STORE_CALLIN_REQUEST  HASH a call-in request
 *   eg:{t:T}:ci:n:<phone>     STORE_CALLIN_HELD     ZSET code ("-" = the number itself) ->
 *                                                   expiry ms of the codes lent on a number
 *   eg:{t:T}:ci:pairs:<phone> STORE_CALLIN_PAIRS    HASH code -> request id (the pair index)
 *   eg:{t:T}:ci:call:<call>   STORE_CALLIN_MEMO     HASH the match of a call, by call id
 *
 * What crosses tenants has plain keys (no hash tag) and is written in a second, idempotent
 * step, never by a script:
 *   eg:outbox:pending         SET of tenants whose outbox may hold entries (the relay's work)
 *   eg:due:index              ZSET "<tenant>|<service>" -> earliest score of that service's due
 *                             and watch ZSETs (never later than it; possibly earlier)
 *
 * Expiry: a record expires at desired time + 14 days (created time for immediate ones); the
 * number's hash with its longest-lived record (create and reschedule only ever lengthen it),
 * idem after 24 hours. So nothing of a number outlives its last record
 * (tests/e2e/retention_test.c checks each family's TTL). */
#ifndef SCHED_STORE_KEYS_H
#define SCHED_STORE_KEYS_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    STORE_RECORD,
    STORE_DUE,
    STORE_QUEUE,
    STORE_WATCH,
    STORE_SLOTS,
    STORE_OUTBOX,
    STORE_NUMBER,
    STORE_IDEM,
    STORE_DAILY,
    STORE_SERVED,
    STORE_STATS,
    STORE_QSTATS,
    STORE_CALLIN_REQUEST,
    STORE_CALLIN_HELD,
    STORE_CALLIN_PAIRS,
    STORE_CALLIN_MEMO,
    STORE_FAMILIES /**< the count */
} store_family_t;

#define STORE_KEY_OUTBOX_PENDING "eg:outbox:pending"
#define STORE_KEY_DUE_INDEX "eg:due:index"

/** The keys of one operation: each built once, owned by the set, valid until store_keys_free.
 *  Not thread-safe (one set per operation, on the stack). */
typedef struct {
    const char *tenant; /**< borrowed */
    char **keys;
    size_t n, cap;
} store_keys_t;

/** Start an empty set for tenant's keys (tenant borrowed: it must outlive the set). */
void store_keys_init(store_keys_t *ks, const char *tenant);

/** The key of family f for rest (the id, service, phone... after the family's name; NULL for
 *  STORE_OUTBOX, which has none). Borrowed from ks. For STORE_DAILY use store_keys_daily. */
const char *store_keys_add(store_keys_t *ks, store_family_t f, const char *rest);

/** The service's STORE_DAILY key of UTC day `day` (days since 1970). Borrowed from ks. */
const char *store_keys_daily(store_keys_t *ks, const char *service, int64_t day);

/** A SCAN MATCH pattern of every key of family f of the tenant (its rest is "*"). */
const char *store_keys_pattern(store_keys_t *ks, store_family_t f);

/** The length of family f's prefix "eg:{t:<tenant>}:<name>:" for ks's tenant: the rest of a
 *  key of that family starts there. */
size_t store_keys_prefix_len(const store_keys_t *ks, store_family_t f);

/** One key of family f for tenant and rest (as store_keys_add), malloc'd: the caller frees it. */
char *store_key(store_family_t f, const char *tenant, const char *rest);

/** Fill lens[i] = strlen(argv[i]) for a script's n arguments, except the nbinary indices in
 *  binary (bytes, not text: the caller sets their lengths). An argument left NULL means the C
 *  side and the script's header disagree: that is logged with the script's name and aborts. */
void store_script_lens(const char *const *argv, size_t *lens, size_t n, const char *script,
                       const int *binary, size_t nbinary);

/** Free every key of the set. Accepts a set with no keys. */
void store_keys_free(store_keys_t *ks);

/** The due index member of a tenant's service, "<tenant>|<service>", into out (at least
 *  STORE_MEMBER_MAX bytes). */
#define STORE_MEMBER_MAX 200
void store_due_member(char *out, const char *tenant, const char *service);

#endif
