/* Redis Streams read through a consumer group, over an eg_store_t: the group created when
 * missing and again when it vanished, this consumer's pending entries read before new ones, idle
 * entries of dead consumers claimed, acknowledgements, and stream replies parsed into entries of
 * (ptr, len) views. The parsers and command builders also serve code that keeps its own
 * pipelines (the outbox relay reads with XRANGE and deletes with XDEL).
 *
 * Threading: an eg_stream_t is NOT thread-safe, like the eg_store_t under it; use both from one
 * thread. */
#ifndef ENGAGE_STREAM_H
#define ENGAGE_STREAM_H
#include <stdbool.h>
#include <stddef.h>

#include "engage/status.h"
#include "engage/store.h"

typedef struct eg_stream eg_stream_t;

/** One field of an entry. Views borrowed from the reply of the batch holding the entry, valid
 *  until eg_stream_batch_clear. Binary-safe: use the lengths. Each view is also followed by a NUL
 *  (eg_reply_t strings are NUL-terminated), so text without NUL bytes reads as a C string. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} eg_stream_field_t;

/** One entry of a stream reply; every pointer borrowed from its batch's reply. */
typedef struct {
    /** EG_OK; EG_ENOTFOUND: a pending entry deleted from the stream since (no fields; id NULL
     *  when Redis sent the whole entry as nil); EG_EPROTO: not [id, [name, value, ...]] (an odd
     *  field count, a non-string), with id set when the id itself was readable. */
    eg_status_t status;
    const char *id; /**< the entry id, NUL-terminated; NULL when unreadable */
    size_t id_len;
    const eg_stream_field_t *fields; /**< nfields fields in stream order (EG_OK only) */
    size_t nfields;
} eg_stream_entry_t;

/** The entries of one reply. Owns the reply and the arrays; release with eg_stream_batch_clear.
 *  Start from a zeroed batch ({0}); every function filling one clears it first. */
typedef struct {
    eg_reply_t *reply;
    eg_stream_entry_t *entries;
    size_t n;
    eg_stream_field_t *fields; /**< storage behind entries[i].fields */
} eg_stream_batch_t;

/** Free what a batch holds and zero it. Accepts NULL and a zeroed batch. */
void eg_stream_batch_clear(eg_stream_batch_t *b);

/** Parse the reply of XRANGE / XREVRANGE (an array of entries), taking ownership of reply
 *  (freed on failure too). EG_EPROTO, with *out empty, when reply is not an array; malformed
 *  single entries only get their own status. */
eg_status_t eg_stream_parse_range(eg_reply_t *reply, eg_stream_batch_t *out);

/** Parse the reply of XREAD / XREADGROUP on one stream: nil (nothing before BLOCK ran out) is an
 *  empty batch; otherwise [[key, entries]]. Ownership and statuses as eg_stream_parse_range. */
eg_status_t eg_stream_parse_read(eg_reply_t *reply, eg_stream_batch_t *out);

/** The value of the first field called name (exact, binary-safe comparison), borrowed from the
 *  entry's batch, or NULL; *len (may be NULL) gets its length. */
const char *eg_stream_entry_field(const eg_stream_entry_t *e, const char *name, size_t *len);

/** A consumer of a group; strings are copied by eg_stream_open. */
typedef struct {
    const char *stream;   /**< the stream's key */
    const char *group;    /**< the consumer group */
    const char *consumer; /**< this reader's name in the group; keep it stable across restarts */
    /** Where a group created here starts: "0" (every entry of the stream, the default when
     *  NULL) or "$" (only entries added from then on). Used again when a lost group is made. */
    const char *start_id;
    int read_count;  /**< entries per read (COUNT); 0 = 100 */
    int claim_count; /**< entries per claim; 0 = 100 */
} eg_stream_opts_t;

/** A consumer handle over store (borrowed: it must outlive the handle). No I/O: the group is
 *  created by eg_stream_create_group or by the first read that finds it missing. The first read
 *  is of this consumer's pending entries. EG_EINVAL when a name is missing or empty. */
eg_status_t eg_stream_open(eg_stream_t **out, eg_store_t *store, const eg_stream_opts_t *opts);

/** Free the handle (the store stays open). Accepts NULL. */
void eg_stream_close(eg_stream_t *s);

/** XGROUP CREATE with MKSTREAM; an existing group (BUSYGROUP) is EG_OK. EG_EPROTO when Redis
 *  refuses (e.g. the key holds another type: eg_stream_error says why), EG_EUNAVAIL when it is
 *  unreachable or still loading. */
eg_status_t eg_stream_create_group(eg_stream_t *s);

/** Read up to read_count entries with XREADGROUP: this consumer's pending entries (id 0) until a
 *  read of them comes back empty, then new ones (>), which become pending until acknowledged.
 *  block_ms > 0 waits that long for new entries (keep it below the store's timeout); 0 does not
 *  wait. A lost group (NOGROUP: the key or the group was deleted, or Redis restarted without its
 *  data) is created again, logged once, and the read retried. On EG_OK *out holds the entries
 *  (possibly none), borrowed views in a batch the caller clears. Any failure (EG_EUNAVAIL,
 *  EG_EPROTO for a refusal or a reply of the wrong shape) leaves *out empty and makes the next
 *  read start from the pending entries again. */
eg_status_t eg_stream_read(eg_stream_t *s, int block_ms, eg_stream_batch_t *out);

/** Whether the next eg_stream_read reads this consumer's pending entries (id 0). */
bool eg_stream_reading_pending(const eg_stream_t *s);

/** Make the next read start from this consumer's pending entries again: after leaving an entry
 *  unacknowledged on purpose, or after a claim moved entries to this consumer. */
void eg_stream_rewind(eg_stream_t *s);

/** Take over up to claim_count entries pending on any consumer for at least min_idle_ms
 *  (XAUTOCLAIM); they are this consumer's pending entries from then on. The scan's cursor is
 *  kept in the handle, so successive calls walk the whole pending list and then start over.
 *  *out as eg_stream_read (Redis 7 leaves out entries deleted meanwhile; 6.2 sends them as
 *  nil, EG_ENOTFOUND entries without an id). A Redis without XAUTOCLAIM
 *  (before 6.2) is warned about once and every claim is then EG_OK with no entries; a lost group
 *  is created again (nothing to claim in it). EG_EPROTO, EG_EUNAVAIL as eg_stream_read. */
eg_status_t eg_stream_claim(eg_stream_t *s, long min_idle_ms, eg_stream_batch_t *out);

/** Acknowledge n entries (XACK) by id (borrowed). n = 0 is EG_OK with no I/O. EG_EPROTO,
 *  EG_EUNAVAIL as eg_stream_read; *acked (may be NULL) gets how many were still pending. */
eg_status_t eg_stream_ack(eg_stream_t *s, const char *const *ids, size_t n, long long *acked);

/** The text of the last failure of this handle (borrowed, valid until the next call). */
const char *eg_stream_error(const eg_stream_t *s);

/** A command's argv for eg_store_pipeline: argv (owned by the struct) points at borrowed
 *  strings and at the struct's own num buffer, so do not copy the struct; free with
 *  eg_stream_cmd_free. */
typedef struct {
    const char **argv;
    int argc;
    char num[24];
} eg_stream_cmd_t;

/** XACK of this handle's stream and group for n ids (borrowed; n >= 1). */
void eg_stream_cmd_ack(const eg_stream_t *s, const char *const *ids, size_t n,
                       eg_stream_cmd_t *out);
/** XRANGE key - + COUNT count: the oldest count entries (key borrowed). */
void eg_stream_cmd_range(const char *key, size_t count, eg_stream_cmd_t *out);
/** XDEL key id... for n ids (key and ids borrowed; n >= 1). */
void eg_stream_cmd_del(const char *key, const char *const *ids, size_t n, eg_stream_cmd_t *out);
/** Free a command's argv array and zero it. Accepts NULL. */
void eg_stream_cmd_free(eg_stream_cmd_t *c);

#endif
