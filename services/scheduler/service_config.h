/* A callback service's configuration: parsed and validated from the admin API's JSON
 * (../shared/API.md), defaults filled in. Plain data, no I/O. */
#ifndef SCHED_SERVICE_CONFIG_H
#define SCHED_SERVICE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engage/json.h"
#include "engage/names.h"
#include "engage/status.h"

#define SVC_NAME_MAX EG_NAME_MAX /**< service names follow lib's name rule (names.h) */

typedef struct {
    char name[SVC_NAME_MAX + 1];
    char timezone[64];
    int slot_minutes;
    int capacity_default;
    int horizon_days;
    bool immediate_enabled;
    bool scheduled_enabled;
    int max_active_per_number;
    int max_per_number_per_day;
    int retry_max_attempts;
    int retry_delay_s;
    int retry_timeout_s; /**< retry.attemptTimeoutSeconds: no word from the platform -> give up */
    char virtual_queue[128];
    int priority;
    char dial_mode[16];
    bool open_24x7; /**< no businessHours given */
    /** closedAtDispatch "complete": a callback falling due while the service is closed completes
     *  (FAIL_ERROR) instead of waiting for the next opening ("wait", the default) */
    bool complete_when_closed;
    eg_json_t *raw; /**< the validated input (owned), kept for the weekly tables */
} svc_config_t;

/** Parse and validate text into cfg (defaults for absent fields). On failure returns EG_EINVAL
 *  with a message naming the field and the rule in err. cfg->raw owned by cfg. */
eg_status_t svc_config_parse(const char *name, const char *text, size_t len, svc_config_t *cfg,
                             char *err, size_t errlen);
/** The effective configuration as JSON text (caller frees). */
char *svc_config_to_json(const svc_config_t *cfg);
/** True when the service's number rules let phone book: it starts with one of
 *  numbers.permittedPrefixes (when any are given) and matches none of numbers.blockedPatterns. */
bool svc_config_number_allowed(const svc_config_t *cfg, const char *phone);

void svc_config_free(svc_config_t *cfg);

#endif
