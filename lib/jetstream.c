/* The bus's JetStream half (see bus.c for the whole adapter): streams created or updated to
 * the wanted settings; durable pull consumers created or updated first and only then bound (so
 * nats.c never deletes a durable it thinks it created); fetched messages wrapped with their
 * delivery count and stream sequence; single publishes. The batch publisher is in
 * jetstream_batch.c.
 *
 * On a cluster (ENGAGE_NATS_URL lists several servers, streams with several replicas) a stream
 * has one leader, which alone answers publishes. When it dies the others elect a new one, and
 * for those seconds (2 to 5 after a kill -9, measured by tests/ha/nats_cluster_test.sh) a
 * publish finds no responder or times out; so does a fetch, whose consumer has a leader too,
 * and the JetStream API while the meta leader is re-elected. Each of these is tried again here
 * (bus_js_transient says which failures an election or a reconnect explains), bounded by the
 * caller's timeout, with one warning when the trouble starts and one line when it ends:
 * - a publish is sent again with the same Nats-Msg-Id, so the stream stores it once even when
 *   the first try was stored and only its ack was lost. Without a message id, only a publish
 *   that certainly was not stored (no responder) is sent again.
 * - a fetch that failed so is tried again until its timeout, then reports "nothing arrived"
 *   (EG_ETIMEOUT): the consumer and its position are in the stream, so nothing is lost, and
 *   the caller's loop simply fetches again.
 * - creating or updating a stream is tried again for up to JS_API_RETRY_MS (a consumer is not:
 *   see eg_bus_js_consumer_open). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_private.h"
#include "engage/log.h"
#include "engage/mem.h"

/* ---- JetStream ---- */

static bool seconds_to_ns(int64_t s, int64_t *ns)
{
    if (s < 0 || s > INT64_MAX / NS_PER_S) {
        return false;
    }
    *ns = s * NS_PER_S;
    return true;
}

/* The next pause of a retry loop: *backoff_ms (then doubled, up to JS_BACKOFF_MAX_MS), but
 * leaving at least JS_BACKOFF_MIN_MS before deadline for the try after it. */
static int64_t next_pause(int64_t *backoff_ms, int64_t deadline)
{
    int64_t pause = *backoff_ms;
    int64_t left = deadline - bus_mono_ms() - JS_BACKOFF_MIN_MS;

    *backoff_ms = *backoff_ms * 2 > JS_BACKOFF_MAX_MS ? JS_BACKOFF_MAX_MS : *backoff_ms * 2;
    return pause < left ? pause : left;
}

/* The replicas the stream has now, or 0 when its info cannot be read. */
static int64_t current_replicas(eg_bus_t *bus, const char *stream)
{
    jsStreamInfo *info = NULL;
    jsErrCode jerr = 0;
    int64_t replicas = 0;

    if (js_GetStreamInfo(&info, bus->js, stream, NULL, &jerr) == NATS_OK && info != NULL &&
        info->Config != NULL) {
        replicas = info->Config->Replicas > 0 ? info->Config->Replicas : 1;
    }
    jsStreamInfo_Destroy(info);
    return replicas;
}

/* One attempt: create, or update when it exists. An update the server refuses only because
 * the replicas cannot change is made again with the stream's own replicas, loudly, so the other
 * settings still apply and the service still starts. */
static natsStatus add_or_update(eg_bus_t *bus, jsStreamConfig *cfg, jsErrCode *jerr)
{
    jsStreamInfo *info = NULL;
    int64_t had;
    natsStatus s;

    *jerr = 0;
    s = js_AddStream(&info, bus->js, cfg, NULL, jerr);
    if (s == NATS_OK) {
        if (cfg->Replicas > 1) {
            eg_log_info("nats: stream %s created with %lld replicas", cfg->Name,
                        (long long)cfg->Replicas);
        }
        goto out;
    }
    if (*jerr != JSStreamNameExistErr) {
        goto out;
    }
    had = current_replicas(bus, cfg->Name);
    *jerr = 0;
    s = js_UpdateStream(&info, bus->js, cfg, NULL, jerr);
    if (s == NATS_OK) {
        if (had != 0 && had != cfg->Replicas) {
            eg_log_warn("nats: stream %s had %lld replicas; updated to %lld (ENGAGE_JS_REPLICAS)",
                        cfg->Name, (long long)had, (long long)cfg->Replicas);
        }
        goto out;
    }
    if (had != 0 && had != cfg->Replicas && !bus_js_transient(s, *jerr)) {
        int64_t wanted = cfg->Replicas;

        eg_log_error("nats: stream %s has %lld replicas and the server refuses %lld: %s "
                     "(JetStream error %d); it keeps %lld (change ENGAGE_JS_REPLICAS or the "
                     "stream by hand)",
                     cfg->Name, (long long)had, (long long)wanted, bus_last_error(), (int)*jerr,
                     (long long)had);
        cfg->Replicas = had;
        *jerr = 0;
        s = js_UpdateStream(&info, bus->js, cfg, NULL, jerr);
        cfg->Replicas = wanted;
    }

out:
    jsStreamInfo_Destroy(info);
    return s;
}

eg_status_t eg_bus_js_stream_ensure_replicas(eg_bus_t *bus, const char *stream,
                                             const char *const *subjects, size_t nsubjects,
                                             int64_t max_age_s, int64_t dup_window_s, int replicas)
{
    eg_status_t st = EG_OK;
    jsStreamConfig cfg;
    jsErrCode jerr = 0;
    natsStatus s;
    const char **subjs = NULL;
    int64_t deadline = bus_mono_ms() + JS_API_RETRY_MS;
    int64_t backoff = JS_BACKOFF_MIN_MS;
    int tries = 0;
    size_t i;

    if (bus == NULL || stream == NULL || subjects == NULL || nsubjects == 0 ||
        nsubjects > INT_MAX || replicas < 1 || replicas > 5) {
        st = EG_EINVAL;
        goto out;
    }

    /* nats.c wants a mutable array of subjects; copy the pointers rather than cast. */
    subjs = eg_xcalloc(nsubjects, sizeof(*subjs));
    for (i = 0; i < nsubjects; i++) {
        subjs[i] = subjects[i];
    }

    jsStreamConfig_Init(&cfg);
    cfg.Name = stream;
    cfg.Subjects = subjs;
    cfg.SubjectsLen = (int)nsubjects;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = replicas;
    if (!seconds_to_ns(max_age_s, &cfg.MaxAge) || !seconds_to_ns(dup_window_s, &cfg.Duplicates)) {
        st = EG_EINVAL;
        goto out;
    }

    for (;;) {
        tries++;
        s = bus_wait_up(bus, deadline) ? add_or_update(bus, &cfg, &jerr)
                                       : NATS_CONNECTION_DISCONNECTED;
        if (s == NATS_OK || !bus_js_transient(s, jerr) ||
            bus_mono_ms() + 2 * JS_BACKOFF_MIN_MS >= deadline) {
            break;
        }
        if (tries == 1) {
            eg_log_warn("nats: cannot create or update stream %s yet: %s (JetStream error %d); "
                        "trying again for up to %d s",
                        stream, natsStatus_GetText(s), (int)jerr, JS_API_RETRY_MS / 1000);
        }
        bus_sleep_ms(next_pause(&backoff, deadline));
    }
    if (s != NATS_OK) {
        bool placement = jerr == JSStreamReplicasNotSupportedErr || jerr == JSClusterNoPeersErr ||
                         jerr == JSInsufficientResourcesErr;

        eg_log_error("nats: cannot create or update stream %s: %s (JetStream error %d)%s", stream,
                     bus_last_error(), (int)jerr,
                     placement && replicas > 1 ? "; more than one replica (ENGAGE_JS_REPLICAS) "
                                                 "needs a NATS cluster with that many JetStream "
                                                 "servers"
                                               : "");
        st = bus_status(s);
        goto out;
    }
    if (tries > 1) {
        eg_log_info("nats: stream %s ready after %d tries", stream, tries);
    }

out:
    free(subjs);
    return st;
}

eg_status_t eg_bus_js_stream_ensure(eg_bus_t *bus, const char *stream, const char *const *subjects,
                                    size_t nsubjects, int64_t max_age_s, int64_t dup_window_s)
{
    return eg_bus_js_stream_ensure_replicas(bus, stream, subjects, nsubjects, max_age_s,
                                            dup_window_s, 1);
}

eg_status_t eg_bus_js_publish(eg_bus_t *bus, const char *subject, const void *data, size_t len,
                              const char *msg_id, const char *corr_id, int timeout_ms,
                              bool *duplicate)
{
    eg_status_t st;
    natsMsg *msg = NULL;
    jsPubOptions po;
    jsPubAck *ack = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    int64_t start = bus_mono_ms();
    int64_t deadline = start + timeout_ms;
    int64_t backoff = JS_BACKOFF_MIN_MS;
    int tries = 0;

    if (duplicate != NULL) {
        *duplicate = false;
    }
    if (bus == NULL || timeout_ms <= 0) {
        st = EG_EINVAL;
        goto out;
    }
    st = bus_build_msg(&msg, subject, data, len, corr_id);
    if (st != EG_OK) {
        goto out;
    }

    for (;;) {
        int64_t left;
        bool again;

        tries++;
        jerr = 0;
        /* Never handed to a connection that is down: nats.c would buffer it and could still
         * send it after we reported failure. Not sent, so a retry needs no message id. */
        if (!bus_wait_up(bus, deadline)) {
            s = NATS_CONNECTION_DISCONNECTED;
            break;
        }
        left = deadline - bus_mono_ms();
        if (left <= 0) {
            s = NATS_TIMEOUT;
            break;
        }
        jsPubOptions_Init(&po);
        po.MsgId = msg_id;
        po.MaxWait = left < JS_TRY_MS ? left : JS_TRY_MS;
        s = js_PublishMsg(&ack, bus->js, msg, &po, &jerr);
        if (s == NATS_OK) {
            break;
        }
        /* No responder: nothing stored it. Anything else may have been stored, which only a
         * message id makes safe to send again. */
        again = bus_js_transient(s, jerr) && (msg_id != NULL || s == NATS_NO_RESPONDERS);
        if (!again || bus_mono_ms() + 2 * JS_BACKOFF_MIN_MS >= deadline) {
            break;
        }
        if (tries == 1) {
            eg_log_warn("nats: JetStream publish on %s (message id %s) failed: %s (JetStream "
                        "error %d); sending it again with the same id for up to %d ms",
                        subject, msg_id != NULL ? msg_id : "none", natsStatus_GetText(s), (int)jerr,
                        timeout_ms);
        }
        bus_sleep_ms(next_pause(&backoff, deadline));
    }
    if (s != NATS_OK) {
        if (tries > 1) {
            eg_log_error("nats: JetStream publish on %s (message id %s) still failing after "
                         "%lld ms and %d tries: %s (JetStream error %d)",
                         subject, msg_id != NULL ? msg_id : "none",
                         (long long)(bus_mono_ms() - start), tries, natsStatus_GetText(s),
                         (int)jerr);
        } else if (!bus_js_transient(s, jerr)) {
            /* A first-try no-responder means no stream listens on the subject. */
            eg_log_error("nats: JetStream publish on %s failed: %s (JetStream error %d)", subject,
                         bus_last_error(), (int)jerr);
        }
        st = bus_status(s);
        goto out;
    }
    if (tries > 1) {
        eg_log_info("nats: JetStream publish on %s (message id %s) stored after %lld ms and %d "
                    "tries%s",
                    subject, msg_id != NULL ? msg_id : "none", (long long)(bus_mono_ms() - start),
                    tries, ack->Duplicate ? " (as a duplicate: an earlier try had stored it)" : "");
    }
    if (duplicate != NULL) {
        *duplicate = ack->Duplicate;
    }

out:
    jsPubAck_Destroy(ack);
    natsMsg_Destroy(msg);
    return st;
}

eg_status_t eg_bus_js_consumer_open(eg_bus_t *bus, const char *stream, const char *durable,
                                    const char *filter_subject, int ack_wait_s,
                                    eg_bus_consumer_t **out)
{
    eg_status_t st = EG_OK;
    jsConsumerConfig cc;
    jsConsumerInfo *info = NULL;
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus s;
    natsSubscription *sub = NULL;

    if (out != NULL) {
        *out = NULL;
    }
    if (bus == NULL || stream == NULL || durable == NULL || durable[0] == '\0' || ack_wait_s <= 0 ||
        out == NULL) {
        st = EG_EINVAL;
        goto out;
    }

    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)ack_wait_s * NS_PER_S;
    cc.FilterSubject = filter_subject;
    /* Replicas stay 0: on a cluster the consumer then has as many as its stream (R3 for
     * ENGAGE_EVENTS in the cluster topology), so its position survives the loss of a node. A
     * failure here during an election is not retried: the callers (archiver, ors-bridge) bind
     * again in their own loops, and would otherwise wait here while asked to stop. */

    /* Create the consumer, or bring an existing one to these settings. */
    s = js_AddConsumer(&info, bus->js, stream, &cc, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNotFoundErr) {
        jsErrCode add_err = jerr;

        jerr = 0;
        s = js_UpdateConsumer(&info, bus->js, stream, &cc, NULL, &jerr);
        if (s != NATS_OK && jerr == 0) {
            jerr = add_err;
        }
    }
    if (s != NATS_OK) {
        if (jerr == JSStreamNotFoundErr) {
            st = EG_ENOTFOUND;
        } else {
            st = bus_status(s);
        }
        eg_log_error("nats: cannot create consumer %s on stream %s: %s (JetStream error %d)",
                     durable, stream, bus_last_error(), (int)jerr);
        goto out;
    }

    /* Bind to it: a consumer this call did not create is never deleted by nats.c. */
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Consumer = durable;
    jerr = 0;
    s = js_PullSubscribe(&sub, bus->js, filter_subject, durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        eg_log_error("nats: cannot bind to consumer %s on stream %s: %s (JetStream error %d)",
                     durable, stream, bus_last_error(), (int)jerr);
        st = bus_status(s);
        goto out;
    }

    *out = eg_xcalloc(1, sizeof(**out));
    (*out)->bus = bus;
    (*out)->sub = sub;
    (*out)->name = eg_xmalloc(strlen(stream) + strlen(durable) + 2);
    sprintf((*out)->name, "%s/%s", stream, durable);

out:
    jsConsumerInfo_Destroy(info);
    return st;
}

void eg_bus_consumer_close(eg_bus_consumer_t *c)
{
    if (c == NULL) {
        return;
    }
    /* The consumer is bound, not created by js_PullSubscribe, so unsubscribing keeps it. */
    natsSubscription_Unsubscribe(c->sub);
    natsSubscription_Destroy(c->sub);
    free(c->name);
    free(c);
}

static eg_bus_jsmsg_t *wrap_jsmsg(natsMsg *msg)
{
    eg_bus_jsmsg_t *m = eg_xcalloc(1, sizeof(*m));
    jsMsgMetaData *meta = NULL;

    m->msg = msg;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        m->deliveries = meta->NumDelivered;
        m->seq = meta->Sequence.Stream;
    } else {
        eg_log_warn("nats: a JetStream message on %s has no metadata", natsMsg_GetSubject(msg));
    }
    jsMsgMetaData_Destroy(meta);
    return m;
}

eg_status_t eg_bus_js_fetch(eg_bus_consumer_t *c, int max, int timeout_ms, eg_bus_jsmsg_t **msgs,
                            int *count)
{
    eg_status_t st = EG_OK;
    natsMsgList list = {NULL, 0};
    jsErrCode jerr = 0;
    natsStatus s = NATS_OK;
    int64_t deadline = bus_mono_ms() + timeout_ms;
    int64_t backoff = JS_BACKOFF_MIN_MS;
    int i;

    if (count != NULL) {
        *count = 0;
    }
    if (c == NULL || max <= 0 || timeout_ms <= 0 || msgs == NULL || count == NULL) {
        st = EG_EINVAL;
        goto out;
    }

    for (;;) {
        int64_t left;

        if (!bus_wait_up(c->bus, deadline)) {
            s = NATS_CONNECTION_DISCONNECTED;
        } else if ((left = deadline - bus_mono_ms()) <= 0) {
            s = NATS_TIMEOUT;
        } else {
            jerr = 0;
            s = natsSubscription_Fetch(&list, c->sub, max, (int64_t)left, &jerr);
        }
        if (list.Count > 0 || s == NATS_OK || s == NATS_TIMEOUT || !bus_js_transient(s, jerr) ||
            bus_mono_ms() + 2 * JS_BACKOFF_MIN_MS >= deadline) {
            break;
        }
        if (!c->troubled) {
            eg_log_warn("nats: fetch from consumer %s failed: %s (JetStream error %d), a leader "
                        "election or a reconnect; fetching again",
                        c->name, natsStatus_GetText(s), (int)jerr);
            c->troubled = true;
        }
        bus_sleep_ms(next_pause(&backoff, deadline));
    }
    if (list.Count == 0) {
        if (s == NATS_OK || bus_js_transient(s, jerr)) {
            st = EG_ETIMEOUT; /* nothing arrived; the consumer keeps its place for the next */
        } else {
            eg_log_error("nats: fetch from consumer %s failed: %s (JetStream error %d)", c->name,
                         bus_last_error(), (int)jerr);
            st = bus_status(s);
        }
        goto out;
    }
    if (c->troubled) {
        eg_log_info("nats: fetch from consumer %s works again", c->name);
        c->troubled = false;
    }

    /* Messages that did arrive are handed out even when the call also reports an error. */
    for (i = 0; i < list.Count && i < max; i++) {
        msgs[i] = wrap_jsmsg(list.Msgs[i]);
        list.Msgs[i] = NULL;
    }
    *count = i;

out:
    natsMsgList_Destroy(&list);
    return st;
}

const void *eg_bus_jsmsg_data(const eg_bus_jsmsg_t *m)
{
    return natsMsg_GetData(m->msg);
}

size_t eg_bus_jsmsg_len(const eg_bus_jsmsg_t *m)
{
    return (size_t)natsMsg_GetDataLength(m->msg);
}

const char *eg_bus_jsmsg_subject(const eg_bus_jsmsg_t *m)
{
    return natsMsg_GetSubject(m->msg);
}

const char *eg_bus_jsmsg_id(const eg_bus_jsmsg_t *m)
{
    return bus_header(m->msg, MSG_ID_HEADER);
}

const char *eg_bus_jsmsg_corr_id(const eg_bus_jsmsg_t *m)
{
    return bus_header(m->msg, EG_BUS_CORR_HEADER);
}

uint64_t eg_bus_jsmsg_deliveries(const eg_bus_jsmsg_t *m)
{
    return m->deliveries;
}

uint64_t eg_bus_jsmsg_seq(const eg_bus_jsmsg_t *m)
{
    return m->seq;
}

eg_status_t eg_bus_jsmsg_ack(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    /* Not waited for: a round trip per message was the archiver's largest cost, and an ack
     * that gets lost only means a redelivery, which every consumer here absorbs (the archiver's
     * writes are idempotent, the bridge's commands are guarded). */
    return bus_status(natsMsg_Ack(m->msg, NULL));
}

eg_status_t eg_bus_jsmsg_nak(eg_bus_jsmsg_t *m, int64_t delay_ms)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    if (delay_ms <= 0) {
        return bus_status(natsMsg_Nak(m->msg, NULL));
    }
    return bus_status(natsMsg_NakWithDelay(m->msg, delay_ms, NULL));
}

eg_status_t eg_bus_jsmsg_in_progress(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    return bus_status(natsMsg_InProgress(m->msg, NULL));
}

eg_status_t eg_bus_jsmsg_term(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return EG_EINVAL;
    }
    return bus_status(natsMsg_Term(m->msg, NULL));
}

void eg_bus_jsmsg_free(eg_bus_jsmsg_t *m)
{
    if (m == NULL) {
        return;
    }
    natsMsg_Destroy(m->msg);
    free(m);
}
