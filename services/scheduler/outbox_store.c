/* The tenants' outboxes as the relay and the recovery see them: see outbox_store.h. */
#include "outbox_store.h"

#include <stdlib.h>

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
