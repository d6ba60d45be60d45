/* The Redis adapter: Lua scripts loaded once and run with EVALSHA (reloaded on NOSCRIPT), a
 * reconnect after a dropped connection, and three kinds of target:
 *   redis://[[user]:password@]host[:port][/db][?min_replicas=N&wait_ms=M]
 *       one server;
 *   redis-sentinel://[[user]:password@]host:port,host:port,...[/db]?master=NAME[&min_replicas=N
 *       &wait_ms=M]
 *       the primary the sentinels (host:port list) name for NAME, followed through a failover;
 *   redis-cluster://[[user]:password@]host:port,host:port,...[?min_replicas=N&wait_ms=M]
 *       a Redis Cluster found from the seed nodes; each command goes to the master of its keys'
 *       slot (all the keys of one command or script must share a slot: a hash tag).
 * min_replicas: every batch that writes is followed by WAIT N wait_ms (default 1000) on the same
 * node, and answers EG_EUNAVAIL when fewer than N replicas took it (the write itself may have
 * happened on the primary: callers only send writes that are safe to repeat).
 *
 * Threading: an eg_store_t is NOT thread-safe; open one per thread. */
#ifndef ENGAGE_STORE_H
#define ENGAGE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include "engage/status.h"

typedef struct eg_store eg_store_t;

typedef enum { EG_STORE_SINGLE = 0, EG_STORE_SENTINEL, EG_STORE_CLUSTER } eg_store_mode_t;

/** A Redis target, parsed from one of the URLs above. Strings owned (eg_store_target_free). */
typedef struct {
    eg_store_mode_t mode;
    size_t nhosts; /**< single: 1; sentinel: the sentinels; cluster: the seed nodes */
    char **host;
    int *port;
    char *password; /**< NULL when none */
    int db;         /**< 0 in cluster mode */
    char *master;   /**< sentinel mode: the master's name */
    int min_replicas;
    int wait_ms;
} eg_store_target_t;

/** Parse a target URL. EG_EINVAL (nothing allocated) on anything else; the URL may hold a
 *  password, so callers never log it. */
eg_status_t eg_store_target_parse(const char *url, eg_store_target_t *out);
void eg_store_target_free(eg_store_target_t *t);

typedef enum {
    EG_REPLY_NIL = 0,
    EG_REPLY_INTEGER,
    EG_REPLY_STRING,
    EG_REPLY_STATUS, /**< a +OK style status; text in str */
    EG_REPLY_ERROR,  /**< a -ERR reply; text in str */
    EG_REPLY_ARRAY
} eg_reply_type_t;

/** A Redis reply in the project's own shape (owned; free with eg_reply_free). */
typedef struct eg_reply {
    eg_reply_type_t type;
    long long integer;
    char *str; /**< string, status or error text, NUL-terminated; NULL otherwise */
    size_t len;
    size_t elements;
    struct eg_reply **element;
} eg_reply_t;

void eg_reply_free(eg_reply_t *r);

/** Connect to a target URL (above), with AUTH and SELECT when given. timeout_ms bounds connect
 *  and each command. EG_EUNAVAIL when unreachable, EG_EINVAL on a URL that does not parse. */
eg_status_t eg_store_open(eg_store_t **out, const char *url, int timeout_ms);
/** Close and free. Accepts NULL. */
void eg_store_close(eg_store_t *s);
/** PING; EG_OK when the server answers. */
eg_status_t eg_store_ping(eg_store_t *s);

/** Register a Lua script with this connection (SCRIPT LOAD now; again after NOSCRIPT).
 *  Returns its handle (>= 0) in *script. The source is copied. */
eg_status_t eg_store_script_add(eg_store_t *s, const char *lua, int *script);

/** EVALSHA script with nkeys keys then args: argv[0..argc) binary-safe with lengths
 *  (argvlen NULL = all NUL-terminated). The first nkeys entries of argv are the keys.
 *  On EG_OK *reply is owned by the caller; a script error is EG_EPROTO with the reply kept
 *  (type EG_REPLY_ERROR) when reply is non-NULL. A dropped connection is retried once after
 *  reconnecting; a server still loading its data (-LOADING) is EG_EUNAVAIL, with no reply. */
eg_status_t eg_store_eval(eg_store_t *s, int script, int nkeys, int argc, const char **argv,
                          const size_t *argvlen, eg_reply_t **reply);

/** eg_store_eval, with n more commands (NUL-terminated argv, as eg_store_pipeline) sent behind
 *  the script in the same round trip; after[i] (owned by the caller) are their replies. The
 *  commands run whatever the script answers, after it; when the server has lost the script it is
 *  loaded and everything is sent again (the commands then ran twice, the last time after the
 *  script), so they must be idempotent. */
eg_status_t eg_store_eval_then(eg_store_t *s, int script, int nkeys, int argc, const char **argv,
                               const size_t *argvlen, eg_reply_t **reply, size_t n,
                               const int *argcs, const char *const *const *cmds,
                               eg_reply_t **after);

/** Run one command given as argv (binary-safe with argvlen; NULL = NUL-terminated strings).
 *  A -ERR reply is EG_EPROTO (reply kept when non-NULL); -LOADING (a restarted server still
 *  reading its data) is EG_EUNAVAIL with no reply. Reconnects and retries once on a dropped
 *  connection. */
eg_status_t eg_store_command(eg_store_t *s, int argc, const char **argv, const size_t *argvlen,
                             eg_reply_t **reply);

/** Run several commands in one round trip (pipelined). cmds[i] is argv of argcs[i] strings
 *  (NUL-terminated). replies[i] owned by the caller. EG_EUNAVAIL, with no replies, when the
 *  server is unreachable or still loading its data (a -LOADING reply to any command). */
eg_status_t eg_store_pipeline(eg_store_t *s, size_t n, const int *argcs,
                              const char *const *const *cmds, eg_reply_t **replies);

/** Text of the last connection or protocol error (borrowed). */
const char *eg_store_error(const eg_store_t *s);

#endif
