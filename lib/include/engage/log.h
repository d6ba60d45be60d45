/* Logging: one JSON object per line on stderr, with the service name, level, and the
 * correlation id of the request being handled by the calling thread.
 * Never log user data or full phone numbers: use eg_log_mask_phone. */
#ifndef ENGAGE_LOG_H
#define ENGAGE_LOG_H
#include <stddef.h>

typedef enum { EG_LOG_DEBUG = 0, EG_LOG_INFO, EG_LOG_WARN, EG_LOG_ERROR } eg_log_level_t;

/** Set the service name and minimum level ("debug", "info", "warn", "error"; NULL = info).
 *  Call once at start, before other threads run. */
void eg_log_init(const char *service, const char *level);

/** Set (or clear with NULL) the calling thread's correlation id; the string is copied. */
void eg_log_set_corr(const char *corr_id);
/** The calling thread's correlation id, or "" when none. Valid until the next set. */
const char *eg_log_corr(void);

/** Log a line at a level. Thread-safe; a line is written with one write(2). */
void eg_log(eg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define eg_log_debug(...) eg_log(EG_LOG_DEBUG, __VA_ARGS__)
#define eg_log_info(...) eg_log(EG_LOG_INFO, __VA_ARGS__)
#define eg_log_warn(...) eg_log(EG_LOG_WARN, __VA_ARGS__)
#define eg_log_error(...) eg_log(EG_LOG_ERROR, __VA_ARGS__)

/** Write phone with all but its last 4 digits replaced by '*' ("+*******1234") into out. */
void eg_log_mask_phone(const char *phone, char *out, size_t outlen);

#endif
