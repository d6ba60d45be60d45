/* E.164 numbers. The rule is deliberately strict and simple ('+', then 8 to 15 digits, the first
 * not 0): no spaces, dashes or national formats, so that one number has one spelling and the
 * per-number indexes and limits cannot be dodged by writing it differently. */
#include "engage/phone.h"

#include <string.h>

bool eg_phone_valid_n(const char *s, size_t len)
{
    if (!s || len < 9 || len > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    for (size_t i = 1; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool eg_phone_valid(const char *s)
{
    return s && eg_phone_valid_n(s, strlen(s));
}
