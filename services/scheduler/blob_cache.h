/* The last stored blob of recently written callbacks, so a change can go straight to its
 * compare-and-set script instead of reading the record first (one Redis round trip less per
 * voice-platform result). A hint only: every write still compares the whole stored blob, so a
 * stale entry (another scheduler wrote since, the record expired or was erased) costs a conflict
 * and a read, never a wrong write. Direct-mapped: a put replaces whatever shared its slot.
 * Thread-safe. */
#ifndef SCHED_BLOB_CACHE_H
#define SCHED_BLOB_CACHE_H
#include <stdbool.h>
#include <stddef.h>

typedef struct blob_cache blob_cache_t;

/** A cache of `slots` entries holding blobs of at most max_blob bytes. */
blob_cache_t *blob_cache_new(size_t slots, size_t max_blob);
void blob_cache_free(blob_cache_t *c);

/** Remember blob as the stored record of tenant's callback id (a copy; too large: forgets). */
void blob_cache_put(blob_cache_t *c, const char *tenant, const char *id, const void *blob,
                    size_t len);

/** A malloc'd copy of the remembered blob (*len bytes), or NULL. */
void *blob_cache_get(blob_cache_t *c, const char *tenant, const char *id, size_t *len);

/** Forget tenant's callback id. */
void blob_cache_forget(blob_cache_t *c, const char *tenant, const char *id);

#endif
