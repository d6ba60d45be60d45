/* The name rule of services and call-in groups. It is deliberately narrow (ASCII letters,
 * digits, '_', '.', '-'): a name travels in URL paths, Redis keys, NATS subjects and log lines,
 * and none of them needs quoting or escaping for these characters. The test is by character
 * range, not isalnum, so the locale cannot widen it. */
#include "engage/names.h"

#include <string.h>

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}

bool eg_name_valid_n(const char *s, size_t len)
{
    if (!s || len < 1 || len > EG_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

bool eg_name_valid(const char *s)
{
    return s && eg_name_valid_n(s, strnlen(s, EG_NAME_MAX + 1));
}
