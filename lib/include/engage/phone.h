/* Telephone numbers: the one E.164 rule every entry point applies (the v3 API's phoneNumber, the
 * voice stream's phone fields). */
#ifndef ENGAGE_PHONE_H
#define ENGAGE_PHONE_H
#include <stdbool.h>
#include <stddef.h>

/** True for an E.164 number: '+', then 8 to 15 digits, the first not 0. s is NUL-terminated
 *  (borrowed); NULL is false. Pure, thread-safe. */
bool eg_phone_valid(const char *s);

/** The same rule for a (pointer, length) view that need not be NUL-terminated; a view holding a
 *  NUL byte is not a number. */
bool eg_phone_valid_n(const char *s, size_t len);

#endif
