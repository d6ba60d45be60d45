/* lib/buf.c: a growable buffer that never passes its maximum and stays NUL-terminated. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "engage/buf.h"
#include "leakcheck.h"

Test(buf, init_is_empty_and_free_accepts_it)
{
    eg_buf_t b;

    eg_buf_init(&b, 100);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.max, 100);
    eg_buf_free(&b);
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, append_puts_printf_concatenate)
{
    eg_buf_t b;

    eg_buf_init(&b, 1024);
    cr_assert_eq(eg_buf_append(&b, "abc", 3), EG_OK);
    cr_assert_eq(eg_buf_puts(&b, "-def"), EG_OK);
    cr_assert_eq(eg_buf_printf(&b, "-%d-%s", 42, "x"), EG_OK);
    cr_assert_str_eq(b.data, "abc-def-42-x");
    cr_assert_eq(b.len, strlen("abc-def-42-x"));
    cr_assert_eq(b.data[b.len], '\0');
    eg_buf_free(&b);
    cr_assert_null(b.data);
    eg_assert_no_leaks();
}

Test(buf, binary_data_keeps_nul_bytes)
{
    eg_buf_t b;
    const char bytes[] = {'a', '\0', 'b', '\0'};

    eg_buf_init(&b, 16);
    cr_assert_eq(eg_buf_append(&b, bytes, sizeof bytes), EG_OK);
    cr_assert_eq(b.len, 4);
    cr_assert_arr_eq(b.data, bytes, 4);
    cr_assert_eq(b.data[4], '\0');
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, empty_appends_are_fine)
{
    eg_buf_t b;

    eg_buf_init(&b, 0);
    cr_assert_eq(eg_buf_append(&b, "", 0), EG_OK);
    cr_assert_eq(eg_buf_puts(&b, ""), EG_OK);
    cr_assert_eq(eg_buf_printf(&b, "%s", ""), EG_OK);
    cr_assert_eq(b.len, 0);
    cr_assert_not_null(b.data);
    cr_assert_str_eq(b.data, "");
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, max_is_exact_and_refusal_leaves_buffer_unchanged)
{
    eg_buf_t b;

    eg_buf_init(&b, 10);
    cr_assert_eq(eg_buf_puts(&b, "12345"), EG_OK);
    cr_assert_eq(eg_buf_puts(&b, "678901"), EG_ETOOBIG);
    cr_assert_str_eq(b.data, "12345");
    cr_assert_eq(b.len, 5);
    cr_assert_eq(eg_buf_printf(&b, "%s", "abcdef"), EG_ETOOBIG);
    cr_assert_str_eq(b.data, "12345");
    cr_assert_eq(b.len, 5);
    cr_assert_eq(eg_buf_puts(&b, "67890"), EG_OK); /* exactly max */
    cr_assert_str_eq(b.data, "1234567890");
    cr_assert_eq(eg_buf_append(&b, "x", 1), EG_ETOOBIG);
    cr_assert_eq(eg_buf_printf(&b, "x"), EG_ETOOBIG);
    cr_assert_str_eq(b.data, "1234567890");
    cr_assert_eq(b.len, 10);
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, huge_append_is_refused_without_overflow)
{
    eg_buf_t b;

    eg_buf_init(&b, 100);
    cr_assert_eq(eg_buf_puts(&b, "abc"), EG_OK);
    cr_assert_eq(eg_buf_append(&b, "x", (size_t)-1), EG_ETOOBIG);
    cr_assert_eq(eg_buf_append(&b, "x", (size_t)-3), EG_ETOOBIG);
    cr_assert_str_eq(b.data, "abc");
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, grows_through_many_appends)
{
    eg_buf_t b;
    char want[10001];

    eg_buf_init(&b, 10000);
    for (int i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);
        cr_assert_eq(eg_buf_append(&b, &c, 1), EG_OK);
        want[i] = c;
    }
    want[10000] = '\0';
    cr_assert_eq(b.len, 10000);
    cr_assert_geq(b.cap, 10001);
    cr_assert_str_eq(b.data, want);
    cr_assert_eq(eg_buf_append(&b, "z", 1), EG_ETOOBIG);
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, long_printf)
{
    eg_buf_t b;
    char big[5000];

    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    eg_buf_init(&b, 1 << 20);
    cr_assert_eq(eg_buf_puts(&b, "<"), EG_OK);
    cr_assert_eq(eg_buf_printf(&b, "%s>%d", big, 7), EG_OK);
    cr_assert_eq(b.len, 1 + 4999 + 2);
    cr_assert_eq(b.data[0], '<');
    cr_assert_eq(b.data[5000], '>');
    cr_assert_eq(b.data[5001], '7');
    cr_assert_eq(b.data[5002], '\0');
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, reset_keeps_memory_and_empties)
{
    eg_buf_t b;

    eg_buf_init(&b, 100);
    cr_assert_eq(eg_buf_puts(&b, "hello"), EG_OK);
    char *before = b.data;
    eg_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(b.data, before);
    cr_assert_eq(eg_buf_puts(&b, "again"), EG_OK);
    cr_assert_str_eq(b.data, "again");
    eg_buf_free(&b);

    eg_buf_init(&b, 100);
    eg_buf_reset(&b); /* never appended to */
    cr_assert_null(b.data);
    eg_assert_no_leaks();
}

Test(buf, reset_makes_room_under_max_again)
{
    eg_buf_t b;

    eg_buf_init(&b, 4);
    cr_assert_eq(eg_buf_puts(&b, "abcd"), EG_OK);
    eg_buf_reset(&b);
    cr_assert_eq(eg_buf_puts(&b, "wxyz"), EG_OK);
    cr_assert_str_eq(b.data, "wxyz");
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, steal_hands_over_the_data)
{
    eg_buf_t b;
    size_t len = 0;

    eg_buf_init(&b, 100);
    cr_assert_eq(eg_buf_puts(&b, "owned"), EG_OK);
    char *s = eg_buf_steal(&b, &len);
    cr_assert_str_eq(s, "owned");
    cr_assert_eq(len, 5);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    /* The buffer is usable again and does not share the stolen memory. */
    cr_assert_eq(eg_buf_puts(&b, "new"), EG_OK);
    cr_assert_str_eq(s, "owned");
    cr_assert_str_eq(b.data, "new");
    free(s);
    eg_buf_free(&b);
    eg_assert_no_leaks();
}

Test(buf, steal_of_an_empty_buffer_is_an_empty_string)
{
    eg_buf_t b;
    size_t len = 99;

    eg_buf_init(&b, 100);
    char *s = eg_buf_steal(&b, &len);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    cr_assert_eq(len, 0);
    free(s);
    s = eg_buf_steal(&b, NULL);
    cr_assert_str_eq(s, "");
    free(s);
    eg_buf_free(&b);
    eg_assert_no_leaks();
}
