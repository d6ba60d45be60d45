/* Names a tenant chooses for its configuration (callback services, call-in groups): the one rule
 * every entry point applies (the v3 API, the admin API, the voice stream, the scheduler, the
 * CLI), so a name accepted in one place is accepted in every other. */
#ifndef ENGAGE_NAMES_H
#define ENGAGE_NAMES_H
#include <stdbool.h>
#include <stddef.h>

/** The longest name, in bytes (a name is ASCII, so also in characters). */
#define EG_NAME_MAX 64

/** The rule in words, for error messages ("name: must be " EG_NAME_RULE). */
#define EG_NAME_RULE "1-64 characters A-Z a-z 0-9 _ . -"

/** True for a name: 1 to EG_NAME_MAX characters, each of A-Z a-z 0-9 '_' '.' '-'. s is
 *  NUL-terminated (borrowed); NULL is false. Pure, thread-safe. */
bool eg_name_valid(const char *s);

/** The same rule for a (pointer, length) view that need not be NUL-terminated; a view holding a
 *  NUL byte is not a name. */
bool eg_name_valid_n(const char *s, size_t len);

#endif
