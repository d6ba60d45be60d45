/* Names of the status codes, and the one table that maps them to HTTP codes. */
#include "engage/status.h"

static const struct {
    const char *name;
    int http;
} table[EG_STATUS_COUNT] = {
    [EG_OK] = {"EG_OK", 200},
    [EG_EINVAL] = {"EG_EINVAL", 400},
    [EG_ENOTFOUND] = {"EG_ENOTFOUND", 404},
    [EG_ECONFLICT] = {"EG_ECONFLICT", 409},
    [EG_EFULL] = {"EG_EFULL", 429},
    [EG_ECLOSED] = {"EG_ECLOSED", 400},
    [EG_ETIMEOUT] = {"EG_ETIMEOUT", 503},
    [EG_EUNAVAIL] = {"EG_EUNAVAIL", 503},
    [EG_EIO] = {"EG_EIO", 500},
    [EG_EPROTO] = {"EG_EPROTO", 502},
    [EG_EAUTH] = {"EG_EAUTH", 401},
    [EG_EFORBIDDEN] = {"EG_EFORBIDDEN", 403},
    [EG_ELIMIT] = {"EG_ELIMIT", 400},
    [EG_ETOOBIG] = {"EG_ETOOBIG", 413},
    [EG_ESTATE] = {"EG_ESTATE", 400},
    [EG_EINTERNAL] = {"EG_EINTERNAL", 500},
};

const char *eg_status_str(eg_status_t st)
{
    if ((int)st < 0 || st >= EG_STATUS_COUNT)
        return "EG_UNKNOWN";
    return table[st].name;
}

int eg_status_http(eg_status_t st)
{
    if ((int)st < 0 || st >= EG_STATUS_COUNT)
        return 500;
    return table[st].http;
}
