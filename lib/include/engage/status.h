/* The one status type of Engage: every fallible lib call returns it. */
#ifndef ENGAGE_STATUS_H
#define ENGAGE_STATUS_H

typedef enum {
    EG_OK = 0,
    EG_EINVAL,     /**< bad input from the caller */
    EG_ENOTFOUND,  /**< no such thing (or not visible to this tenant) */
    EG_ECONFLICT,  /**< a concurrent change or a duplicate */
    EG_EFULL,      /**< capacity reached (a slot) */
    EG_ECLOSED,    /**< outside business hours, or a feature switched off */
    EG_ETIMEOUT,   /**< a peer did not answer in time */
    EG_EUNAVAIL,   /**< a peer or server is not reachable (no responders, connection down) */
    EG_EIO,        /**< an I/O or server-side error */
    EG_EPROTO,     /**< a peer answered something that cannot be understood */
    EG_EAUTH,      /**< missing or unknown credentials */
    EG_EFORBIDDEN, /**< credentials valid but not allowed to do this */
    EG_ELIMIT,     /**< a limit was reached (rate, per-number, size) */
    EG_ETOOBIG,    /**< input larger than allowed */
    EG_ESTATE,     /**< the thing is in a state that does not allow the operation */
    EG_EINTERNAL,  /**< a bug: should never happen */
    EG_STATUS_COUNT
} eg_status_t;

/** Short stable name of a status ("EG_ENOTFOUND"). Never NULL. */
const char *eg_status_str(eg_status_t st);

/** The HTTP status code the API answers for a status (EG_OK -> 200). */
int eg_status_http(eg_status_t st);

#endif
