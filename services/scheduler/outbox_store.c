/* The tenants' outboxes as the relay and the recovery see them: see outbox_store.h. */
#include "outbox_store.h"

#include <stdlib.h>

#include "engage/log.h"
#include "engage/mem.h"
#include "store_keys.h"

eg_status_t outbox_store_mark_pending(eg_store_t *store, const char *tenant)
{
    const char *sadd[] = {"SADD", STORE_KEY_OUTBOX_PENDING, tenant};
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(store, 3, sadd, NULL, &r);
    eg_reply_free(r);
    return st;
}

eg_status_t outbox_store_mark_if_nonempty(eg_store_t *store, const char *tenant, bool *marked)
{
    char *k_out = store_key(STORE_OUTBOX, tenant, NULL);
    const char *xlen[] = {"XLEN", k_out};
    eg_reply_t *r = NULL;
    *marked = false;
    eg_status_t st = eg_store_command(store, 2, xlen, NULL, &r);
    if (st == EG_OK && r->type == EG_REPLY_INTEGER && r->integer > 0) {
        st = outbox_store_mark_pending(store, tenant);
        *marked = st == EG_OK;
    }
    eg_reply_free(r);
    free(k_out);
    return st;
}

eg_status_t outbox_store_pending(eg_store_t *store, outbox_tenants_t *out)
{
    const char *smembers[] = {"SMEMBERS", STORE_KEY_OUTBOX_PENDING};
    eg_reply_t *r = NULL;
    *out = (outbox_tenants_t){0};
    eg_status_t st = eg_store_command(store, 2, smembers, NULL, &r);
    if (st == EG_OK && r->type != EG_REPLY_ARRAY)
        st = EG_EPROTO;
    if (st == EG_OK && r->elements) {
        out->name = eg_xcalloc(r->elements, sizeof *out->name);
        for (size_t i = 0; i < r->elements; i++)
            if (r->element[i]->type == EG_REPLY_STRING)
                out->name[out->n++] = eg_xstrdup(r->element[i]->str);
    }
    eg_reply_free(r);
    return st;
}

void outbox_tenants_free(outbox_tenants_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->name[i]);
    free(t->name);
    *t = (outbox_tenants_t){0};
}

eg_status_t outbox_store_step(eg_store_t *store, const outbox_step_t *p, eg_stream_batch_t *next)
{
    const char *sadd[] = {"SADD", STORE_KEY_OUTBOX_PENDING, p->tenant};
    const char *srem[] = {"SREM", STORE_KEY_OUTBOX_PENDING, p->tenant};
    eg_stream_cmd_t range = {0}, xdel = {0};
    const char *const *cmds[4];
    int argcs[4];
    size_t n = 0, read_at = 4;
    eg_reply_t *replies[4] = {NULL};
    if (p->sadd) {
        cmds[n] = sadd;
        argcs[n++] = 3;
    }
    if (p->srem) {
        cmds[n] = srem;
        argcs[n++] = 3;
    }
    if (p->ndel) {
        eg_stream_cmd_del(p->k_out, p->del, p->ndel, &xdel);
        cmds[n] = xdel.argv;
        argcs[n++] = xdel.argc;
    }
    if (p->read) {
        read_at = n;
        eg_stream_cmd_range(p->k_out, OUTBOX_BATCH, &range);
        cmds[n] = range.argv;
        argcs[n++] = range.argc;
    }
    eg_status_t st = eg_store_pipeline(store, n, argcs, cmds, replies);
    for (size_t i = 0; i < n && st == EG_OK; i++) {
        if (replies[i]->type == EG_REPLY_ERROR) {
            eg_log_error("relay of tenant %s: %s: %s", p->tenant, cmds[i][0], replies[i]->str);
            st = EG_EPROTO;
        }
    }
    if (st == EG_OK && p->read) {
        st = eg_stream_parse_range(replies[read_at], next); /* takes the reply */
        replies[read_at] = NULL;
    }
    for (size_t i = 0; i < n; i++)
        eg_reply_free(replies[i]);
    eg_stream_cmd_free(&xdel);
    eg_stream_cmd_free(&range);
    return st;
}
