/* lib/json.c: parsing (depth limit, duplicate keys, error positions), building, access and
 * ownership. Run under ASan: a wrong reference count shows up as a leak or a use after free. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "engage/json.h"
#include "leakcheck.h"

static eg_json_t *parse(const char *text, size_t max_depth, char *err, size_t errlen)
{
    return eg_json_parse(text, strlen(text), max_depth, err, errlen);
}

/* n nested arrays around a 0: depth n. Caller frees. */
static char *nested_arrays(size_t n)
{
    char *s = malloc(2 * n + 2);
    cr_assert_not_null(s);
    memset(s, '[', n);
    s[n] = '0';
    memset(s + n + 1, ']', n);
    s[2 * n + 1] = '\0';
    return s;
}

/* n nested objects {"a":{"a":...{}}}: depth n. Caller frees. */
static char *nested_objects(size_t n)
{
    char *s = malloc(6 * n + 1);
    size_t p = 0;
    cr_assert_not_null(s);
    for (size_t i = 0; i + 1 < n; i++) {
        memcpy(s + p, "{\"a\":", 5);
        p += 5;
    }
    s[p++] = '{';
    for (size_t i = 0; i < n; i++)
        s[p++] = '}';
    s[p] = '\0';
    return s;
}

static void assert_round_trip(const char *compact)
{
    char err[200] = "";
    eg_json_t *v = parse(compact, 0, err, sizeof err);
    size_t len = 0;

    cr_assert_not_null(v, "'%s' refused: %s", compact, err);
    char *out = eg_json_dump(v, &len);
    cr_assert_str_eq(out, compact);
    cr_assert_eq(len, strlen(compact));
    free(out);
    eg_json_free(v);
}

Test(json, parse_dump_round_trip)
{
    assert_round_trip("{\"a\":1,\"b\":[true,false,null,\"x\",1.5],\"c\":{\"d\":\"e\"}}");
    assert_round_trip("[]");
    assert_round_trip("{}");
    assert_round_trip("[{\"z\":1,\"a\":2,\"m\":3}]"); /* key order kept */
    assert_round_trip("{\"big\":9223372036854775807,\"small\":-9223372036854775808}");
    assert_round_trip("{\"s\":\"quote \\\" backslash \\\\ newline \\n\"}");
    assert_round_trip("\"a string\"");
    assert_round_trip("42");
    eg_assert_no_leaks();
}

Test(json, dump_is_compact)
{
    const char *text = "{ \"a\" : 1 ,\n  \"b\" : [ 1 , 2 ] }";
    eg_json_t *v = parse(text, 0, NULL, 0);
    cr_assert_not_null(v);
    char *out = eg_json_dump(v, NULL);
    cr_assert_str_eq(out, "{\"a\":1,\"b\":[1,2]}");
    free(out);
    eg_json_free(v);
    eg_assert_no_leaks();
}

Test(json, unicode_escapes_decode_to_utf8)
{
    eg_json_t *v = parse("{\"s\":\"caf\\u00e9 \\ud83d\\ude00\"}", 0, NULL, 0);
    cr_assert_not_null(v);
    cr_assert_str_eq(eg_json_str(eg_json_get(v, "s")), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    eg_json_free(v);
    eg_assert_no_leaks();
}

Test(json, depth_32_accepted_and_33_refused_by_default)
{
    char err[200];
    char *ok = nested_arrays(32), *deep = nested_arrays(33);
    eg_json_t *v = parse(ok, 0, err, sizeof err);

    cr_assert_not_null(v, "depth 32 refused: %s", err);
    eg_json_free(v);
    err[0] = '\0';
    cr_assert_null(parse(deep, 0, err, sizeof err));
    cr_assert(strstr(err, "nesting") != NULL, "message: %s", err);
    free(ok);
    free(deep);

    ok = nested_objects(32);
    deep = nested_objects(33);
    v = parse(ok, 0, err, sizeof err);
    cr_assert_not_null(v, "objects depth 32 refused: %s", err);
    eg_json_free(v);
    cr_assert_null(parse(deep, 0, err, sizeof err));
    free(ok);
    free(deep);
    eg_assert_no_leaks();
}

Test(json, max_depth_parameter_is_honoured)
{
    char err[200];
    char *five = nested_arrays(5);
    eg_json_t *v;

    cr_assert_null(parse(five, 4, err, sizeof err));
    cr_assert(strstr(err, "4") != NULL, "message does not name the limit: %s", err);
    v = parse(five, 5, err, sizeof err);
    cr_assert_not_null(v, "%s", err);
    eg_json_free(v);
    free(five);

    /* Scalars have depth 0; one container is depth 1. */
    v = parse("1", 1, err, sizeof err);
    cr_assert_not_null(v);
    eg_json_free(v);
    v = parse("{\"a\":1}", 1, err, sizeof err);
    cr_assert_not_null(v);
    eg_json_free(v);
    cr_assert_null(parse("{\"a\":[]}", 1, err, sizeof err));
    cr_assert_null(parse("[[1],[2]]", 1, err, sizeof err));
    v = parse("[[1],[2],{}]", 2, err, sizeof err);
    cr_assert_not_null(v, "sibling containers counted as nesting: %s", err);
    eg_json_free(v);
    eg_assert_no_leaks();
}

Test(json, brackets_inside_strings_do_not_count)
{
    const char *texts[] = {
        "[\"[[[[[[[[[[{{{{{{{{{{\"]", "{\"[[[[[[\":\"{{{{{{{\"}",
        "[\"\\\"[[[[[[[[[[\"]",       /* escaped quote, then brackets still in the string */
        "[\"\\\\\",\"[[[[[[[[[[[\"]", /* escaped backslash ends before the quote */
        "[\"]]]]]]]]]]]]]]]]]]]]\"]", /* closing brackets in strings do not lower the count */
    };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char err[200] = "";
        eg_json_t *v = parse(texts[i], 1, err, sizeof err);
        cr_assert_not_null(v, "'%s' refused with max depth 1: %s", texts[i], err);
        eg_json_free(v);
    }
    /* A string full of closing brackets must not let real nesting slip under the limit. */
    char err[200];
    cr_assert_null(parse("[\"]]]]]]]]\",[[[1]]]]", 3, err, sizeof err));
    eg_assert_no_leaks();
}

Test(json, duplicate_keys_are_refused)
{
    char err[200] = "";

    cr_assert_null(parse("{\"a\":1,\"a\":2}", 0, err, sizeof err));
    cr_assert_neq(err[0], '\0');
    cr_assert_null(parse("{\"x\":{\"b\":1,\"b\":1}}", 0, err, sizeof err));
    cr_assert_null(parse("[{\"k\":null,\"k\":null}]", 0, err, sizeof err));
    eg_assert_no_leaks();
}

Test(json, syntax_error_names_line_and_column)
{
    char err[200] = "";
    const char *text = "{\n  \"a\": 1,\n  \"b\": ,\n}";

    cr_assert_null(parse(text, 0, err, sizeof err));
    cr_assert(strstr(err, "line 3") != NULL, "message: %s", err);
    cr_assert(strstr(err, "column") != NULL, "message: %s", err);
    eg_assert_no_leaks();
}

Test(json, invalid_texts_are_refused)
{
    const char *bad[] = {
        "",           "{",           "}",
        "{\"a\":1,}", "[1,]",        "{'a':1}",
        "{a:1}",      "{} x",        "[1] [2]",
        "nul",        "\"\\u0000\"", "\"\\x41\"",
        "[01]",       "{\"a\" 1}",   "\"unterminated",
        "[1e999999]", "NaN",         "\"\xff\xfe\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[200] = "";
        eg_json_t *v = parse(bad[i], 0, err, sizeof err);
        cr_assert_null(v, "'%s' accepted", bad[i]);
        cr_assert_neq(err[0], '\0', "'%s': no message", bad[i]);
    }
    eg_assert_no_leaks();
}

Test(json, null_error_buffer_is_allowed)
{
    cr_assert_null(eg_json_parse("{", 1, 0, NULL, 0));
    cr_assert_null(eg_json_parse("[[1]]", 5, 1, NULL, 0));
    eg_assert_no_leaks();
}

Test(json, parse_honours_len)
{
    const char *text = "{\"a\":1}garbage";
    eg_json_t *v = eg_json_parse(text, 7, 0, NULL, 0);

    cr_assert_not_null(v);
    cr_assert_eq(eg_json_int(eg_json_get(v, "a")), 1);
    eg_json_free(v);
    cr_assert_null(eg_json_parse(text, strlen(text), 0, NULL, 0));
    eg_assert_no_leaks();
}

Test(json, object_iteration_visits_every_member_once)
{
    eg_json_t *v = parse("{\"one\":1,\"two\":2,\"three\":3,\"four\":4}", 0, NULL, 0);
    void *it = NULL;
    const char *key;
    eg_json_t *val;
    int seen = 0;
    int64_t sum = 0;

    cr_assert_not_null(v);
    cr_assert_eq(eg_json_object_size(v), 4);
    while (eg_json_object_next(v, &it, &key, &val)) {
        cr_assert_not_null(key);
        cr_assert(eg_json_is_integer(val));
        cr_assert_eq(eg_json_get(v, key), val, "iteration value is not the member of %s", key);
        seen |= 1 << (eg_json_int(val) - 1);
        sum += eg_json_int(val);
    }
    cr_assert_eq(seen, 0xf);
    cr_assert_eq(sum, 10);
    /* Exhausted stays exhausted. */
    cr_assert_not(eg_json_object_next(v, &it, &key, &val));
    eg_json_free(v);
    eg_assert_no_leaks();
}

Test(json, object_iteration_of_empty_and_non_objects)
{
    eg_json_t *o = eg_json_object(), *a = eg_json_array(), *s = eg_json_string("x");
    void *it = NULL;
    const char *key;
    eg_json_t *val;

    eg_json_append(a, eg_json_integer(1));
    cr_assert_not(eg_json_object_next(o, &it, &key, &val));
    it = NULL;
    cr_assert_not(eg_json_object_next(a, &it, &key, &val));
    it = NULL;
    cr_assert_not(eg_json_object_next(s, &it, &key, &val));
    it = NULL;
    cr_assert_not(eg_json_object_next(NULL, &it, &key, &val));
    eg_json_free(o);
    eg_json_free(a);
    eg_json_free(s);
    eg_assert_no_leaks();
}

Test(json, get_on_non_object_is_null)
{
    eg_json_t *a = parse("[{\"a\":1}]", 0, NULL, 0);
    eg_json_t *s = eg_json_string("a");
    eg_json_t *o = parse("{\"a\":1}", 0, NULL, 0);

    cr_assert_null(eg_json_get(a, "a"));
    cr_assert_null(eg_json_get(s, "a"));
    cr_assert_null(eg_json_get(NULL, "a"));
    cr_assert_null(eg_json_get(o, "b"));
    cr_assert_not_null(eg_json_get(o, "a"));
    cr_assert_null(eg_json_get(eg_json_get(o, "a"), "a")); /* integer */
    eg_json_free(a);
    eg_json_free(s);
    eg_json_free(o);
    eg_assert_no_leaks();
}

Test(json, arrays)
{
    eg_json_t *a = parse("[10,\"x\",null]", 0, NULL, 0);
    eg_json_t *o = eg_json_object();

    cr_assert_eq(eg_json_array_size(a), 3);
    cr_assert_eq(eg_json_int(eg_json_array_get(a, 0)), 10);
    cr_assert_str_eq(eg_json_str(eg_json_array_get(a, 1)), "x");
    cr_assert(eg_json_is_null(eg_json_array_get(a, 2)));
    cr_assert_null(eg_json_array_get(a, 3));
    cr_assert_null(eg_json_array_get(a, (size_t)-1));
    cr_assert_null(eg_json_array_get(NULL, 0));
    cr_assert_null(eg_json_array_get(o, 0));
    cr_assert_eq(eg_json_array_size(o), 0);
    cr_assert_eq(eg_json_array_size(NULL), 0);
    cr_assert_eq(eg_json_object_size(a), 0);
    cr_assert_eq(eg_json_object_size(NULL), 0);
    eg_json_free(a);
    eg_json_free(o);
    eg_assert_no_leaks();
}

Test(json, type_predicates_and_accessors)
{
    eg_json_t *v = parse("{\"s\":\"hi\",\"i\":-7,\"r\":2.5,\"t\":true,\"f\":false,\"n\":null,"
                         "\"o\":{},\"a\":[]}",
                         0, NULL, 0);
    cr_assert_not_null(v);
    eg_json_t *s = eg_json_get(v, "s"), *i = eg_json_get(v, "i"), *r = eg_json_get(v, "r");
    eg_json_t *t = eg_json_get(v, "t"), *f = eg_json_get(v, "f"), *n = eg_json_get(v, "n");
    eg_json_t *o = eg_json_get(v, "o"), *a = eg_json_get(v, "a");

    cr_assert(eg_json_is_string(s) && !eg_json_is_string(i) && !eg_json_is_string(NULL));
    cr_assert(eg_json_is_integer(i) && !eg_json_is_integer(r) && !eg_json_is_integer(s));
    cr_assert(eg_json_is_number(i) && eg_json_is_number(r) && !eg_json_is_number(t));
    cr_assert(eg_json_is_bool(t) && eg_json_is_bool(f) && !eg_json_is_bool(n));
    cr_assert(eg_json_is_null(n) && !eg_json_is_null(NULL) && !eg_json_is_null(f));
    cr_assert(eg_json_is_object(o) && !eg_json_is_object(a) && !eg_json_is_object(NULL));
    cr_assert(eg_json_is_array(a) && !eg_json_is_array(o) && !eg_json_is_array(NULL));

    cr_assert_str_eq(eg_json_str(s), "hi");
    cr_assert_eq(eg_json_str_len(s), 2);
    cr_assert_null(eg_json_str(i));
    cr_assert_eq(eg_json_str_len(i), 0);
    cr_assert_eq(eg_json_int(i), -7);
    cr_assert_eq(eg_json_int(NULL), 0);
    cr_assert_float_eq(eg_json_number(r), 2.5, 1e-12);
    cr_assert_float_eq(eg_json_number(i), -7.0, 1e-12);
    cr_assert(eg_json_true(t));
    cr_assert_not(eg_json_true(f));
    cr_assert_not(eg_json_true(n));
    cr_assert_not(eg_json_true(NULL));
    eg_json_free(v);
    eg_assert_no_leaks();
}

Test(json, build_and_dump)
{
    eg_json_t *o = eg_json_object();
    eg_json_t *a = eg_json_array();

    eg_json_set_str(o, "s", "v");
    eg_json_set_int(o, "i", -3);
    eg_json_set_bool(o, "b", true);
    eg_json_append(a, eg_json_integer(1));
    eg_json_append(a, eg_json_real(0.5));
    eg_json_append(a, eg_json_null());
    eg_json_append(a, eg_json_bool(false));
    eg_json_append(a, eg_json_stringn("abcdef", 3));
    eg_json_append(a, NULL); /* NULL becomes null */
    eg_json_set(o, "a", a);
    eg_json_set(o, "n", NULL);
    char *out = eg_json_dump(o, NULL);
    cr_assert_str_eq(out, "{\"s\":\"v\",\"i\":-3,\"b\":true,\"a\":[1,0.5,null,false,\"abc\",null],"
                          "\"n\":null}");
    free(out);
    eg_json_free(o);
    eg_assert_no_leaks();
}

Test(json, string_constructors_never_return_null)
{
    eg_json_t *a = eg_json_string(NULL), *b = eg_json_string("\xff\xfe bad utf-8");
    eg_json_t *c = eg_json_stringn("\xc3", 1);

    cr_assert(eg_json_is_string(a) && eg_json_is_string(b) && eg_json_is_string(c));
    cr_assert_str_eq(eg_json_str(a), "");
    eg_json_free(a);
    eg_json_free(b);
    eg_json_free(c);
    eg_assert_no_leaks();
}

Test(json, dump_escapes_control_characters)
{
    eg_json_t *s = eg_json_string("a\"b\\c\nd\x01");
    char *out = eg_json_dump(s, NULL);

    cr_assert_str_eq(out, "\"a\\\"b\\\\c\\nd\\u0001\"");
    free(out);
    eg_json_free(s);
    eg_assert_no_leaks();
}

Test(json, set_takes_ownership)
{
    /* The object owns what is set into it: freeing the object frees the value (a leak here
     * fails under LeakSanitizer), and a caller that wants to keep it takes a reference. */
    eg_json_t *o = eg_json_object();
    eg_json_t *kept = eg_json_string("kept");

    eg_json_set(o, "kept", eg_json_ref(kept));
    eg_json_set(o, "owned", eg_json_string("owned"));
    eg_json_set(o, "inner", eg_json_object());
    eg_json_set_str(eg_json_get(o, "inner"), "deep", "x");
    cr_assert_eq(eg_json_get(o, "kept"), kept, "set copied instead of taking the value");
    eg_json_free(o);
    /* Still ours after the object died. */
    cr_assert_str_eq(eg_json_str(kept), "kept");
    eg_json_free(kept);
    eg_assert_no_leaks();
}

Test(json, replacing_a_member_releases_the_old_value)
{
    eg_json_t *o = eg_json_object();

    eg_json_set(o, "k", eg_json_string("first"));
    eg_json_set(o, "k", eg_json_string("second"));
    eg_json_set_int(o, "k", 3);
    cr_assert_eq(eg_json_object_size(o), 1);
    cr_assert_eq(eg_json_int(eg_json_get(o, "k")), 3);
    eg_json_free(o);
    eg_assert_no_leaks();
}

Test(json, append_takes_ownership_and_get_is_borrowed)
{
    eg_json_t *a = eg_json_array();
    eg_json_t *item = eg_json_object();

    eg_json_append(a, item);
    cr_assert_eq(eg_json_array_get(a, 0), item);
    eg_json_set_str(eg_json_array_get(a, 0), "x", "y");
    char *out = eg_json_dump(a, NULL);
    cr_assert_str_eq(out, "[{\"x\":\"y\"}]");
    free(out);
    eg_json_free(a);
    eg_assert_no_leaks();
}

Test(json, ref_keeps_a_parsed_child_alive)
{
    eg_json_t *root = parse("{\"child\":{\"v\":1}}", 0, NULL, 0);
    eg_json_t *child = eg_json_ref(eg_json_get(root, "child"));

    eg_json_free(root);
    cr_assert_eq(eg_json_int(eg_json_get(child, "v")), 1);
    eg_json_free(child);
    eg_json_free(NULL);
    eg_assert_no_leaks();
}
