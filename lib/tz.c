/* Time zones over GLib's GTimeZone, which reads the system tzdata package (current rules). */
#include "engage/tz.h"

#include <glib.h>
#include <string.h>

bool eg_tz_valid(const char *name)
{
    if (!name || !*name || strlen(name) > 64)
        return false;
    GTimeZone *tz = g_time_zone_new_identifier(name);
    if (!tz)
        return false;
    g_time_zone_unref(tz);
    return true;
}
