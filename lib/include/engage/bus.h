/* The bus: NATS core request/reply and publish/subscribe, and JetStream streams, publish with
 * a message id, and durable pull consumers. nats.c types stay inside lib/bus.c.
 *
 * Threading: one eg_bus_t is shared by all threads of a process (the NATS connection is
 * thread-safe). Each subscription has its own delivery thread; a handler runs on it. */
#ifndef ENGAGE_BUS_H
#define ENGAGE_BUS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "engage/status.h"

typedef struct eg_bus eg_bus_t;
typedef struct eg_bus_msg eg_bus_msg_t;

/** The header that carries the correlation id from the HTTP request to every service. */
#define EG_BUS_CORR_HEADER "Engage-Corr-Id"

/** Connect to url as client_name, with SendAsap on, retry on a failed first connect, and
 *  unlimited reconnects. url may be a comma-separated list of servers of one cluster
 *  (ENGAGE_NATS_URL=nats://h:p1,nats://h:p2,...): the first connect takes any that answers, and
 *  when the server in use dies the bus reconnects to another one (about RECONNECT_WAIT_MS,
 *  250 ms, per attempt) and its subscriptions, queue groups included, are renewed there.
 *  EG_EUNAVAIL when it cannot connect within timeout_ms. Close with eg_bus_close. */
eg_status_t eg_bus_open(eg_bus_t **out, const char *url, const char *client_name, int timeout_ms);
/** Drain subscriptions, close, free. Accepts NULL. */
void eg_bus_close(eg_bus_t *bus);
/** True while the connection is up. */
bool eg_bus_connected(eg_bus_t *bus);
/** The URL of the server the bus is connected to now, any password masked, into out (outlen
 *  bytes, truncated). EG_EUNAVAIL while it is not connected, EG_EINVAL on a NULL argument. */
eg_status_t eg_bus_server_url(eg_bus_t *bus, char *out, size_t outlen);
/** Call at process exit after every bus is closed (nats_Close). */
void eg_bus_shutdown(void);

/** Handler of a message; msg is valid only during the call. */
typedef void (*eg_bus_handler_fn)(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg);

/** Subscribe to subject; with queue non-NULL, members of the queue group share messages.
 *  Each call gets its own delivery thread, so N calls on one subject = N parallel workers. */
eg_status_t eg_bus_subscribe(eg_bus_t *bus, const char *subject, const char *queue,
                             eg_bus_handler_fn handler, void *arg);

const void *eg_bus_msg_data(const eg_bus_msg_t *msg);
size_t eg_bus_msg_len(const eg_bus_msg_t *msg);
const char *eg_bus_msg_subject(const eg_bus_msg_t *msg);
/** The correlation id header, or NULL. Borrowed, valid during the handler. */
const char *eg_bus_msg_corr_id(const eg_bus_msg_t *msg);

/** Answer a request with raw bytes (no-op status EG_EINVAL when msg has no reply subject).
 *  Request handlers answer with eg_bus_reply instead, which never drops an answer silently. */
eg_status_t eg_bus_respond(eg_bus_t *bus, const eg_bus_msg_t *msg, const void *data, size_t len);

struct ProtobufCMessage; /* protobuf-c's; the generated Eg__*Reply types start with one */

/** Answer a request with a reply message m (borrowed): any message of proto/engage.proto whose
 *  field 1 is its Eg__Status, as every reply there is. m is packed into a buffer of exactly its
 *  packed size. When that is larger than the bus allows (eg_bus_set_reply_max, else the
 *  server's max_payload), or the server refuses it as too large, the asker gets a reply holding
 *  only the status EG_ETOOBIG with a message naming both sizes instead, and one warning is
 *  logged with the subject and the size: it hears at once instead of waiting out its timeout.
 *  Returns EG_OK when m was sent; EG_ETOOBIG when the error reply went instead; EG_EINVAL when
 *  msg has no reply subject; else the bus's failure (EG_EUNAVAIL while disconnected), logged.
 *  Thread-safe, like eg_bus_respond. */
eg_status_t eg_bus_reply(eg_bus_t *bus, const eg_bus_msg_t *msg, const struct ProtobufCMessage *m);

/** Answer with a reply holding only a status: code st and message text (borrowed; NULL = ""),
 *  a valid answer to any request (every reply has its Status as field 1). Returns as
 *  eg_bus_reply. */
eg_status_t eg_bus_reply_status(eg_bus_t *bus, const eg_bus_msg_t *msg, eg_status_t st,
                                const char *text);

/** Lower the largest answer eg_bus_reply sends to max bytes (0, the default: the server's
 *  max_payload, 1 MiB unless configured). A limit above the server's has no effect. For tests,
 *  and to refuse huge answers early. Thread-safe. */
void eg_bus_set_reply_max(eg_bus_t *bus, size_t max);

/** Publish on core NATS (fire and forget). corr_id may be NULL. */
eg_status_t eg_bus_publish(eg_bus_t *bus, const char *subject, const void *data, size_t len,
                           const char *corr_id);

/** Request/reply. On EG_OK *reply (free()) and *reply_len hold the answer. EG_EUNAVAIL on
 *  "no responders" (at once) or when the connection stayed down for all of timeout_ms,
 *  EG_ETIMEOUT when none answered within timeout_ms. While the connection is down (moving to
 *  another server of the list) the request waits for it, within timeout_ms, and is sent then;
 *  a request already sent is never sent again here (the caller decides whether a replay is
 *  harmless). */
eg_status_t eg_bus_request(eg_bus_t *bus, const char *subject, const void *data, size_t len,
                           const char *corr_id, int timeout_ms, void **reply, size_t *reply_len);

/* ---- JetStream ---- */

/** Create the stream (file storage, one replica), or update it to these settings when it
 *  exists. max_age_s 0 = none; dup_window_s is the duplicate-detection window for message ids.
 *  As eg_bus_js_stream_ensure_replicas with replicas 1. */
eg_status_t eg_bus_js_stream_ensure(eg_bus_t *bus, const char *stream, const char *const *subjects,
                                    size_t nsubjects, int64_t max_age_s, int64_t dup_window_s);

/** Create the stream with replicas copies (1..5; more than 1 needs a NATS cluster with that
 *  many JetStream servers), or update an existing one to these settings. A stream with other
 *  replicas is scaled to these (a warning names both counts); when the server refuses that,
 *  an error says so and the stream keeps its replicas while the other settings apply (EG_OK).
 *  While the JetStream API is unavailable (no meta leader yet, an election, a reconnect) it is
 *  tried again for up to 15 s. EG_EINVAL on a bad argument, else the bus's failure (logged). */
eg_status_t eg_bus_js_stream_ensure_replicas(eg_bus_t *bus, const char *stream,
                                             const char *const *subjects, size_t nsubjects,
                                             int64_t max_age_s, int64_t dup_window_s, int replicas);

/** Publish and wait for the stream's ack. msg_id is the Nats-Msg-Id used for dedupe; a
 *  duplicate inside the window is EG_OK (*duplicate set true when non-NULL).
 *  timeout_ms bounds the whole call. A publish that fails because the stream has no leader for
 *  the moment (an election after its leader died: no responder or no ack) or the connection is
 *  moving to another server is sent again with the same msg_id, in tries of at most 2 s, until
 *  stored or timeout_ms passes; the stream keeps it once (then *duplicate may report that an
 *  earlier try of this call was stored). Without msg_id only a publish that certainly was not
 *  stored is sent again. One warning when a retry starts and one line with the outcome are
 *  logged. EG_EUNAVAIL when no stream answered (none listens on subject, or no leader came
 *  back in time) or the connection stayed down, EG_ETIMEOUT when the last try had no ack. */
eg_status_t eg_bus_js_publish(eg_bus_t *bus, const char *subject, const void *data, size_t len,
                              const char *msg_id, const char *corr_id, int timeout_ms,
                              bool *duplicate);

/** A batch publisher: JetStream publishes sent back to back without waiting for each ack, then
 *  one wait for all of them (nats.c's asynchronous publish). It has its own JetStream context,
 *  so its wait covers its own messages only. Used by one thread at a time; close it before the
 *  bus. */
typedef struct eg_bus_js_batch eg_bus_js_batch_t;

/** Open a batch publisher on bus (borrowed; must outlive it). Close with
 *  eg_bus_js_batch_close. EG_EINVAL on a NULL argument, else what nats.c reports. */
eg_status_t eg_bus_js_batch_open(eg_bus_t *bus, eg_bus_js_batch_t **out);
/** Wait up to a few seconds for what is still in flight, then free. Accepts NULL. */
void eg_bus_js_batch_close(eg_bus_js_batch_t *b);

/** Send one message of the current batch without waiting for its ack; msg_id becomes its
 *  Nats-Msg-Id (dedupe), corr_id (may be NULL) the correlation header. Every call takes the
 *  next slot (0, 1, ... since the last wait), also when it fails: EG_EUNAVAIL when NATS is
 *  down, else what nats.c reports (that slot is then not acknowledged). Arguments borrowed. */
eg_status_t eg_bus_js_batch_add(eg_bus_js_batch_t *b, const char *subject, const void *data,
                                size_t len, const char *msg_id, const char *corr_id);
/** Wait until every message added since the last wait is acknowledged or failed, at most
 *  timeout_ms; acked[i] (for i < n; extra slots are false) tells whether the stream stored
 *  slot i (a duplicate inside the window counts as stored). Messages that failed because the
 *  stream had no leader for the moment or the connection moved to another server (including
 *  those unanswered after 2 s, and those added while it was down) are sent again, unchanged
 *  and so with the same msg_id, within timeout_ms, as eg_bus_js_publish does. Messages still
 *  unanswered at the deadline are taken back and count as not stored. Returns EG_OK when every
 *  slot is stored, else the first failure's status (EG_ETIMEOUT, EG_EUNAVAIL, EG_EIO, ...).
 *  Starts a new batch. */
eg_status_t eg_bus_js_batch_wait(eg_bus_js_batch_t *b, int timeout_ms, bool *acked, size_t n);

typedef struct eg_bus_consumer eg_bus_consumer_t;
typedef struct eg_bus_jsmsg eg_bus_jsmsg_t;

/** Bind (creating when missing) a durable pull consumer on stream, filtered to filter_subject
 *  (NULL = all), explicit ack, ack wait ack_wait_s. Close with eg_bus_consumer_close. */
eg_status_t eg_bus_js_consumer_open(eg_bus_t *bus, const char *stream, const char *durable,
                                    const char *filter_subject, int ack_wait_s,
                                    eg_bus_consumer_t **out);
void eg_bus_consumer_close(eg_bus_consumer_t *c);

/** Fetch up to max messages, waiting up to timeout_ms for the first. On EG_OK msgs[0..*count)
 *  are owned by the caller (free each with eg_bus_jsmsg_free after ack/nak). EG_ETIMEOUT
 *  when none arrived, also when fetches failed all along because the consumer had no leader
 *  (an election) or the connection was moving to another server: those are tried again within
 *  timeout_ms, with one warning when it starts and one line when a fetch works again. Other
 *  failures (the consumer was deleted, ...) are returned as the bus's status, logged. */
eg_status_t eg_bus_js_fetch(eg_bus_consumer_t *c, int max, int timeout_ms, eg_bus_jsmsg_t **msgs,
                            int *count);

const void *eg_bus_jsmsg_data(const eg_bus_jsmsg_t *m);
size_t eg_bus_jsmsg_len(const eg_bus_jsmsg_t *m);
const char *eg_bus_jsmsg_subject(const eg_bus_jsmsg_t *m);
/** The Nats-Msg-Id header, or NULL. */
const char *eg_bus_jsmsg_id(const eg_bus_jsmsg_t *m);
const char *eg_bus_jsmsg_corr_id(const eg_bus_jsmsg_t *m);
/** How many times this message has been delivered (1 the first time). */
uint64_t eg_bus_jsmsg_deliveries(const eg_bus_jsmsg_t *m);
/** The stream sequence of the message. */
uint64_t eg_bus_jsmsg_seq(const eg_bus_jsmsg_t *m);
/** Acknowledge. Sent, not confirmed: a lost ack means the message is delivered again after
 *  AckWait, so consumers must be idempotent (they are: see the callers). */
eg_status_t eg_bus_jsmsg_ack(eg_bus_jsmsg_t *m);
/** Negative ack: redeliver after delay_ms (0 = at once). */
eg_status_t eg_bus_jsmsg_nak(eg_bus_jsmsg_t *m, int64_t delay_ms);
/** Tell the server the message is still being worked on (resets its ack wait). */
eg_status_t eg_bus_jsmsg_in_progress(eg_bus_jsmsg_t *m);
/** Terminate: never redeliver. */
eg_status_t eg_bus_jsmsg_term(eg_bus_jsmsg_t *m);
void eg_bus_jsmsg_free(eg_bus_jsmsg_t *m);

#endif
