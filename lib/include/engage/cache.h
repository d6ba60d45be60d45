/* A small thread-safe string-keyed cache with a time to live per entry: used for API key
 * answers in the api and for configuration in the scheduler. */
#ifndef ENGAGE_CACHE_H
#define ENGAGE_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eg_cache eg_cache_t;

/** A cache of at most max_entries; an insert into a full cache evicts expired entries first,
 *  then an arbitrary one. Values are copied (value_size bytes). */
eg_cache_t *eg_cache_new(size_t max_entries, size_t value_size);
void eg_cache_free(eg_cache_t *c);
/** Store a copy of value under key for ttl_ms. */
void eg_cache_put(eg_cache_t *c, const char *key, const void *value, int64_t ttl_ms);
/** Copy the live value under key into value_out; false when absent or expired. */
bool eg_cache_get(eg_cache_t *c, const char *key, void *value_out);
void eg_cache_del(eg_cache_t *c, const char *key);
void eg_cache_clear(eg_cache_t *c);

#endif
