/* Inside lib/store: what the cluster client knows about commands and replies, without a
 * connection (so unit tests reach it): the slot of a key, the keys of a command, whether a
 * command writes, and the parsing of CLUSTER SLOTS and of MOVED/ASK redirections. Replies are
 * the project's eg_reply_t; no hiredis type here. */
#ifndef ENGAGE_STORE_SLOTS_H
#define ENGAGE_STORE_SLOTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage/status.h"
#include "engage/store.h"

#define STORE_SLOTS 16384
#define STORE_NO_SLOT (-1)    /* a command without a key: any node takes it */
#define STORE_CROSS_SLOT (-2) /* keys in more than one slot: refused before it is sent */

/** One command of a batch: argv with lengths (lens NULL = NUL-terminated strings). */
typedef struct {
    int argc;
    const char *const *argv;
    const size_t *lens;
} store_cmd_t;

/** The cluster slot of a key: CRC16 (XMODEM) of its hash tag (the text between the first '{'
 *  and the next '}', when not empty) or of the whole key, modulo 16384. */
uint16_t store_key_slot(const char *key, size_t len);

/** The slot of cmd's keys; STORE_NO_SLOT for a command without a key, STORE_CROSS_SLOT when its
 *  keys are in different slots. EVAL/EVALSHA take their KEYS, XREAD/XREADGROUP the streams after
 *  STREAMS, DEL/EXISTS/MGET/UNLINK/TOUCH every argument, XGROUP/XINFO the argument after the
 *  subcommand, SCAN the hash tag of its MATCH pattern (none: STORE_NO_SLOT); any other command
 *  not in the keyless list, its first argument. */
int store_cmd_slot(const store_cmd_t *cmd);

/** True when cmd may change data: everything but a list of read-only commands. */
bool store_cmd_writes(const store_cmd_t *cmd);

/** A redirection: "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>". */
typedef struct {
    bool ask; /**< ASK (one command, after ASKING) rather than MOVED (the slot moved) */
    int slot;
    char host[256];
    int port;
} store_redirect_t;

/** Parse an error text (len bytes) as a redirection. False when it is none or malformed. */
bool store_redirect_parse(const char *err, size_t len, store_redirect_t *out);

/** One range of slots and the master serving it (host owned). */
typedef struct {
    int start, end;
    char *host;
    int port;
} store_range_t;

/** Parse a CLUSTER SLOTS reply into ranges (owned array; store_ranges_free). An empty host (the
 *  node does not know its own address) becomes asked_host. EG_EPROTO on anything malformed. */
eg_status_t store_slots_parse(const eg_reply_t *r, const char *asked_host, store_range_t **out,
                              size_t *n);
void store_ranges_free(store_range_t *r, size_t n);

#endif
