/* API key checks for the api service: the scheduler owns the key table. */
#ifndef SCHED_AUTH_H
#define SCHED_AUTH_H
#include "engage/pg.h"
#include "scheduler.h"

typedef struct {
    char tenant[40];
    char role[8];
    int rate_limit;
} auth_result_t;

/** The cache of key records auth_check uses (sched_t.keys). */
eg_cache_t *auth_cache_new(void);

/** Forget a key (after it changed): drops it from this scheduler's cache, and makes sure a
 *  check that read the old record before the change does not cache it afterwards. */
void auth_forget(sched_t *s, const char *key_id);

/** Check a presented key. EG_EAUTH for a malformed, unknown, revoked or wrong key (one answer
 *  for all, so a caller learns nothing about which). */
eg_status_t auth_check(sched_t *s, eg_pg_t *pg, const char *key, auth_result_t *out,
                       char *key_id_out, size_t key_id_len);

#endif
