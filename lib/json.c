/* JSON over jansson. eg_json_t is jansson's json_t under another name: the cast is the whole
 * adapter, so no allocation or copy is added. Parsing rejects duplicate keys and NUL bytes
 * inside strings and enforces a nesting limit on top of jansson's own. */
#include "engage/json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define J(v) ((json_t *)(v))
#define CJ(v) ((const json_t *)(v))
#define E(v) ((eg_json_t *)(v))

static size_t depth_of(const json_t *v)
{
    size_t max = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child)
        {
            size_t d = depth_of(child);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            size_t d = depth_of(child);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

eg_json_t *eg_json_parse(const char *text, size_t len, size_t max_depth, char *err, size_t errlen)
{
    json_error_t je;
    if (!max_depth)
        max_depth = 32;
    /* jansson recurses while parsing, with its own limit of 2048; cheap to pre-check ours by
     * counting brackets so a hostile body never reaches deep recursion. */
    size_t depth = 0, maxseen = 0;
    int in_str = 0, esc = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > maxseen)
                maxseen = depth;
        } else if ((c == '}' || c == ']') && depth) {
            depth--;
        }
    }
    if (maxseen > max_depth) {
        if (err)
            snprintf(err, errlen, "JSON nesting deeper than %zu levels", max_depth);
        return NULL;
    }
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!v) {
        if (err)
            snprintf(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column,
                     je.text);
        return NULL;
    }
    if (depth_of(v) > max_depth) {
        json_decref(v);
        if (err)
            snprintf(err, errlen, "JSON nesting deeper than %zu levels", max_depth);
        return NULL;
    }
    return E(v);
}

void eg_json_free(eg_json_t *v)
{
    if (v)
        json_decref(J(v));
}

eg_json_t *eg_json_ref(eg_json_t *v)
{
    return E(json_incref(J(v)));
}

eg_json_t *eg_json_object(void)
{
    return E(json_object());
}
eg_json_t *eg_json_array(void)
{
    return E(json_array());
}
eg_json_t *eg_json_string(const char *s)
{
    json_t *v = json_string(s ? s : "");
    /* Invalid UTF-8 would make jansson return NULL: keep a value, drop the bytes. */
    return E(v ? v : json_string(""));
}
eg_json_t *eg_json_stringn(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    return E(v ? v : json_string(""));
}
eg_json_t *eg_json_integer(int64_t v)
{
    return E(json_integer((json_int_t)v));
}
eg_json_t *eg_json_real(double v)
{
    return E(json_real(v));
}
eg_json_t *eg_json_bool(bool v)
{
    return E(json_boolean(v));
}
eg_json_t *eg_json_null(void)
{
    return E(json_null());
}

void eg_json_set(eg_json_t *obj, const char *key, eg_json_t *val)
{
    json_object_set_new(J(obj), key, val ? J(val) : json_null());
}
void eg_json_set_str(eg_json_t *obj, const char *key, const char *s)
{
    eg_json_set(obj, key, eg_json_string(s));
}
void eg_json_set_int(eg_json_t *obj, const char *key, int64_t v)
{
    eg_json_set(obj, key, eg_json_integer(v));
}
void eg_json_set_bool(eg_json_t *obj, const char *key, bool v)
{
    eg_json_set(obj, key, eg_json_bool(v));
}
void eg_json_append(eg_json_t *arr, eg_json_t *val)
{
    json_array_append_new(J(arr), val ? J(val) : json_null());
}

eg_json_t *eg_json_get(const eg_json_t *obj, const char *key)
{
    if (!obj || !json_is_object(CJ(obj)))
        return NULL;
    return E(json_object_get(CJ(obj), key));
}
size_t eg_json_array_size(const eg_json_t *arr)
{
    return arr ? json_array_size(CJ(arr)) : 0;
}
eg_json_t *eg_json_array_get(const eg_json_t *arr, size_t i)
{
    return arr ? E(json_array_get(CJ(arr), i)) : NULL;
}
bool eg_json_object_next(const eg_json_t *obj, void **iter, const char **key, eg_json_t **val)
{
    if (!obj || !json_is_object(CJ(obj)))
        return false;
    void *it = *iter ? json_object_iter_next(J(obj), *iter) : json_object_iter(J(obj));
    if (!it)
        return false;
    *iter = it;
    *key = json_object_iter_key(it);
    *val = E(json_object_iter_value(it));
    return true;
}
size_t eg_json_object_size(const eg_json_t *obj)
{
    return obj ? json_object_size(CJ(obj)) : 0;
}

bool eg_json_is_object(const eg_json_t *v)
{
    return v && json_is_object(CJ(v));
}
bool eg_json_is_array(const eg_json_t *v)
{
    return v && json_is_array(CJ(v));
}
bool eg_json_is_string(const eg_json_t *v)
{
    return v && json_is_string(CJ(v));
}
bool eg_json_is_integer(const eg_json_t *v)
{
    return v && json_is_integer(CJ(v));
}
bool eg_json_is_number(const eg_json_t *v)
{
    return v && json_is_number(CJ(v));
}
bool eg_json_is_bool(const eg_json_t *v)
{
    return v && json_is_boolean(CJ(v));
}
bool eg_json_is_null(const eg_json_t *v)
{
    return v && json_is_null(CJ(v));
}

const char *eg_json_str(const eg_json_t *v)
{
    return eg_json_is_string(v) ? json_string_value(CJ(v)) : NULL;
}
size_t eg_json_str_len(const eg_json_t *v)
{
    return eg_json_is_string(v) ? json_string_length(CJ(v)) : 0;
}
int64_t eg_json_int(const eg_json_t *v)
{
    return v ? (int64_t)json_integer_value(CJ(v)) : 0;
}
double eg_json_number(const eg_json_t *v)
{
    return v ? json_number_value(CJ(v)) : 0.0;
}
bool eg_json_true(const eg_json_t *v)
{
    return v && json_is_true(CJ(v));
}

char *eg_json_dump(const eg_json_t *v, size_t *len)
{
    char *s = json_dumps(CJ(v), JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) {
        fprintf(stderr, "engage: out of memory serialising JSON\n");
        abort();
    }
    if (len)
        *len = strlen(s);
    return s;
}
