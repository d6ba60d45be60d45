/* JSON values (jansson inside). Values are reference counted; "borrowed" results stay valid
 * while their parent lives. Not thread-safe per value. */
#ifndef ENGAGE_JSON_H
#define ENGAGE_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eg_json eg_json_t;

/** Parse text; NULL on error with a message in err (which names the line/column). Depth
 *  beyond max_depth (0 = 32) is an error. Caller frees the result with eg_json_free. */
eg_json_t *eg_json_parse(const char *text, size_t len, size_t max_depth, char *err, size_t errlen);
/** Drop a reference (frees at zero). Accepts NULL. */
void eg_json_free(eg_json_t *v);
/** Add a reference; returns v. */
eg_json_t *eg_json_ref(eg_json_t *v);

eg_json_t *eg_json_object(void);
eg_json_t *eg_json_array(void);
eg_json_t *eg_json_string(const char *s);
eg_json_t *eg_json_stringn(const char *s, size_t len);
eg_json_t *eg_json_integer(int64_t v);
eg_json_t *eg_json_real(double v);
eg_json_t *eg_json_bool(bool v);
eg_json_t *eg_json_null(void);

/** Set obj[key] = val, taking ownership of val. */
void eg_json_set(eg_json_t *obj, const char *key, eg_json_t *val);
void eg_json_set_str(eg_json_t *obj, const char *key, const char *s);
void eg_json_set_int(eg_json_t *obj, const char *key, int64_t v);
void eg_json_set_bool(eg_json_t *obj, const char *key, bool v);
/** Append val to arr, taking ownership. */
void eg_json_append(eg_json_t *arr, eg_json_t *val);

/** obj[key] (borrowed) or NULL when absent or obj is not an object. */
eg_json_t *eg_json_get(const eg_json_t *obj, const char *key);
size_t eg_json_array_size(const eg_json_t *arr);
/** arr[i] (borrowed) or NULL. */
eg_json_t *eg_json_array_get(const eg_json_t *arr, size_t i);
/** Iterate an object: start with *iter = NULL; returns false at the end. key/val borrowed. */
bool eg_json_object_next(const eg_json_t *obj, void **iter, const char **key, eg_json_t **val);
size_t eg_json_object_size(const eg_json_t *obj);

bool eg_json_is_object(const eg_json_t *v);
bool eg_json_is_array(const eg_json_t *v);
bool eg_json_is_string(const eg_json_t *v);
bool eg_json_is_integer(const eg_json_t *v);
bool eg_json_is_number(const eg_json_t *v);
bool eg_json_is_bool(const eg_json_t *v);
bool eg_json_is_null(const eg_json_t *v);

/** String value (borrowed) or NULL when not a string. */
const char *eg_json_str(const eg_json_t *v);
size_t eg_json_str_len(const eg_json_t *v);
int64_t eg_json_int(const eg_json_t *v);
double eg_json_number(const eg_json_t *v);
bool eg_json_true(const eg_json_t *v);

/** Compact serialisation. Caller frees with free(). *len may be NULL. */
char *eg_json_dump(const eg_json_t *v, size_t *len);

#endif
