/* Unit tests of the stream reply parsers and command builders of lib/stream.c, over hand-built
 * eg_reply_t shapes (no server): well-formed entries become exact views into the reply, and
 * malformed ones get a status of their own instead of failing or crashing the batch. */
#include <stdarg.h>
#include <string.h>

#include <criterion/criterion.h>

#include "engage/mem.h"
#include "engage/stream.h"
#include "leakcheck.h"

static eg_reply_t *node(eg_reply_type_t type)
{
    eg_reply_t *r = eg_xcalloc(1, sizeof(*r));
    r->type = type;
    return r;
}

static eg_reply_t *bytes(const char *p, size_t len)
{
    eg_reply_t *r = node(EG_REPLY_STRING);
    r->str = eg_xmalloc(len + 1);
    memcpy(r->str, p, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static eg_reply_t *str(const char *s)
{
    return bytes(s, strlen(s));
}

static eg_reply_t *integer(long long v)
{
    eg_reply_t *r = node(EG_REPLY_INTEGER);
    r->integer = v;
    return r;
}

/* An array of n elements (taken). */
static eg_reply_t *arr(size_t n, ...)
{
    va_list ap;
    eg_reply_t *r = node(EG_REPLY_ARRAY);
    r->elements = n;
    r->element = n ? eg_xcalloc(n, sizeof(*r->element)) : NULL;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        r->element[i] = va_arg(ap, eg_reply_t *);
    }
    va_end(ap);
    return r;
}

Test(stream_parse, range_entries_are_views_into_the_reply)
{
    eg_reply_t *r = arr(2, arr(2, str("1-1"), arr(4, str("type"), str("dial"), str("n"), str("7"))),
                        arr(2, str("1-2"), arr(0)));
    const char *type_value = r->element[0]->element[1]->element[1]->str;
    eg_stream_batch_t b = {0};
    cr_assert_eq(eg_stream_parse_range(r, &b), EG_OK);
    cr_assert_eq(b.n, 2);
    cr_expect_eq(b.entries[0].status, EG_OK);
    cr_expect_str_eq(b.entries[0].id, "1-1");
    cr_expect_eq(b.entries[0].id_len, 3);
    cr_assert_eq(b.entries[0].nfields, 2);
    cr_expect_eq(b.entries[0].fields[0].value, type_value, "a view, not a copy");
    cr_expect_eq(b.entries[0].fields[1].name_len, 1);
    size_t len = 0;
    cr_expect_str_eq(eg_stream_entry_field(&b.entries[0], "n", &len), "7");
    cr_expect_eq(len, 1);
    cr_expect_eq(b.entries[1].status, EG_OK, "an entry without fields is well formed");
    cr_expect_eq(b.entries[1].nfields, 0);
    eg_stream_batch_clear(&b);
    cr_expect_null(b.reply);
    eg_stream_batch_clear(&b); /* twice is fine */
    eg_stream_batch_clear(NULL);
    eg_assert_no_leaks();
}

Test(stream_parse, malformed_entries_get_their_own_status)
{
    eg_reply_t *r =
        arr(7, arr(2, str("1-1"), arr(3, str("a"), str("b"), str("c"))), /* odd field count */
            arr(2, str("1-2"), eg_xcalloc(1, sizeof(eg_reply_t))),       /* nil: deleted id */
            eg_xcalloc(1, sizeof(eg_reply_t)),                           /* nil entry */
            arr(2, integer(5), arr(0)),                                  /* id not a string */
            arr(2, str("1-5"), arr(2, str("a"), integer(1))),            /* value not a string */
            arr(1, str("1-6")),                                          /* no field array */
            arr(2, str("1-7"), arr(2, str("ok"), str("yes"))));
    const char *before = r->element[0]->element[1]->element[2]->str;
    eg_stream_batch_t b = {0};
    cr_assert_eq(eg_stream_parse_range(r, &b), EG_OK, "one bad entry does not fail the batch");
    cr_assert_eq(b.n, 7);
    cr_expect_eq(b.entries[0].status, EG_EPROTO);
    cr_expect_str_eq(b.entries[0].id, "1-1", "kept, so the entry can be dead-lettered");
    cr_expect_eq(b.entries[0].nfields, 0);
    cr_expect_eq(b.entries[1].status, EG_ENOTFOUND);
    cr_expect_str_eq(b.entries[1].id, "1-2", "kept, so the entry can be acknowledged");
    cr_expect_eq(b.entries[2].status, EG_ENOTFOUND);
    cr_expect_null(b.entries[2].id);
    cr_expect_eq(b.entries[3].status, EG_EPROTO);
    cr_expect_null(b.entries[3].id);
    cr_expect_eq(b.entries[4].status, EG_EPROTO);
    cr_expect_str_eq(b.entries[4].id, "1-5");
    cr_expect_eq(b.entries[5].status, EG_EPROTO);
    cr_expect_str_eq(b.entries[5].id, "1-6");
    cr_expect_eq(b.entries[6].status, EG_OK);
    cr_expect_str_eq(eg_stream_entry_field(&b.entries[6], "ok", NULL), "yes");
    cr_expect_null(eg_stream_entry_field(&b.entries[0], "a", NULL));
    cr_expect_str_eq(before, "c", "the reply is not written to");
    eg_stream_batch_clear(&b);
    eg_assert_no_leaks();
}

Test(stream_parse, a_reply_of_the_wrong_shape_fails_and_is_freed)
{
    eg_stream_batch_t b = {0};
    cr_expect_eq(eg_stream_parse_range(str("OK"), &b), EG_EPROTO);
    cr_expect_eq(b.n, 0);
    cr_expect_null(b.reply);
    cr_expect_eq(eg_stream_parse_range(NULL, &b), EG_EPROTO);
    cr_expect_eq(eg_stream_parse_read(arr(1, arr(1, str("k"))), &b), EG_EPROTO);
    cr_expect_eq(
        eg_stream_parse_read(arr(2, arr(2, str("k"), arr(0)), arr(2, str("l"), arr(0))), &b),
        EG_EPROTO, "one stream only");
    cr_expect_eq(eg_stream_parse_read(arr(1, arr(2, str("k"), str("x"))), &b), EG_EPROTO);
    eg_assert_no_leaks();
}

Test(stream_parse, read_replies)
{
    eg_stream_batch_t b = {0};
    cr_assert_eq(eg_stream_parse_read(node(EG_REPLY_NIL), &b), EG_OK, "BLOCK ran out");
    cr_expect_eq(b.n, 0);
    eg_reply_t *r = arr(1, arr(2, str("k"), arr(1, arr(2, str("9-0"), arr(2, str("f"), str(""))))));
    cr_assert_eq(eg_stream_parse_read(r, &b), EG_OK);
    cr_assert_eq(b.n, 1);
    cr_expect_str_eq(b.entries[0].id, "9-0");
    size_t len = 7;
    cr_expect_not_null(eg_stream_entry_field(&b.entries[0], "f", &len), "empty is not absent");
    cr_expect_eq(len, 0);
    /* A second parse into the same batch frees the first. */
    cr_assert_eq(eg_stream_parse_read(arr(1, arr(2, str("k"), arr(0))), &b), EG_OK);
    cr_expect_eq(b.n, 0);
    eg_stream_batch_clear(&b);
    eg_assert_no_leaks();
}

Test(stream_parse, field_lookup_is_exact_and_binary_safe)
{
    static const char nul_name[] = {'t', 'y', 'p', 'e', '\0', 'x'};
    eg_reply_t *r =
        arr(1, arr(2, str("1-1"),
                   arr(8, bytes(nul_name, sizeof nul_name), str("a"), str("typ"), str("b"),
                       str("type"), bytes("c\0d", 3), str("type"), str("second"))));
    eg_stream_batch_t b = {0};
    cr_assert_eq(eg_stream_parse_range(r, &b), EG_OK);
    size_t len = 0;
    const char *v = eg_stream_entry_field(&b.entries[0], "type", &len);
    cr_assert_not_null(v);
    cr_expect_eq(len, 3, "the first exact match, with its NUL byte kept");
    cr_expect_eq(memcmp(v, "c\0d", 3), 0);
    cr_expect_null(eg_stream_entry_field(&b.entries[0], "ty", NULL));
    eg_stream_batch_clear(&b);
}

Test(stream_cmd, range_and_del_argv)
{
    eg_stream_cmd_t c = {0};
    eg_stream_cmd_range("k", 256, &c);
    cr_assert_eq(c.argc, 6);
    const char *want[] = {"XRANGE", "k", "-", "+", "COUNT", "256"};
    for (int i = 0; i < 6; i++) {
        cr_expect_str_eq(c.argv[i], want[i]);
    }
    eg_stream_cmd_free(&c);
    const char *ids[] = {"1-1", "2-2"};
    eg_stream_cmd_del("k", ids, 2, &c);
    cr_assert_eq(c.argc, 4);
    cr_expect_str_eq(c.argv[0], "XDEL");
    cr_expect_str_eq(c.argv[1], "k");
    cr_expect_eq(c.argv[3], ids[1], "ids are borrowed");
    eg_stream_cmd_free(&c);
    eg_stream_cmd_free(NULL);
    eg_assert_no_leaks();
}
