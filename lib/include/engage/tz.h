/* Time zones from the system's tzdata, through GLib (not ICU: see DESIGN.md). */
#ifndef ENGAGE_TZ_H
#define ENGAGE_TZ_H
#include <stdbool.h>

/** True when name is a time zone the system's tzdata knows ("UTC", "America/New_York"). */
bool eg_tz_valid(const char *name);

#endif
