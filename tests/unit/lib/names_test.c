/* The name rule of callback services and call-in groups, shared by every entry point. */
#include <criterion/criterion.h>
#include <string.h>

#include "engage/names.h"

Test(names, accepts_1_to_64_of_letters_digits_underscore_dot_dash)
{
    char longest[EG_NAME_MAX + 1];
    memset(longest, 'a', EG_NAME_MAX);
    longest[EG_NAME_MAX] = '\0';
    const char *ok[] = {"a", "sales", "Sales_EU-1.vip", "0", "_", ".", "-", longest};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cr_expect(eg_name_valid(ok[i]), "'%s' refused", ok[i]);
        cr_expect(eg_name_valid_n(ok[i], strlen(ok[i])), "'%s' refused as a view", ok[i]);
    }
}

Test(names, refuses_empty_too_long_and_other_characters)
{
    char too_long[EG_NAME_MAX + 2];
    memset(too_long, 'a', EG_NAME_MAX + 1);
    too_long[EG_NAME_MAX + 1] = '\0';
    const char *bad[] = {NULL,          "",     too_long, "a b", "a/b", "../x", "a:b",
                         "caf\xc3\xa9", "a\tb", "x\n",    "a*",  "{x}", "a%2F", "a\\b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_expect_not(eg_name_valid(bad[i]), "'%s' accepted", bad[i] ? bad[i] : "(null)");
        if (bad[i])
            cr_expect_not(eg_name_valid_n(bad[i], strlen(bad[i])), "'%s' accepted as a view",
                          bad[i]);
    }
}

Test(names, a_view_is_bounded_by_its_length_and_refuses_nul_bytes)
{
    const char s[] = "sales\0"
                     "x";
    cr_expect(eg_name_valid_n(s, 5), "the first 5 bytes");
    cr_expect_not(eg_name_valid_n(s, sizeof s - 1), "a NUL inside");
    cr_expect_not(eg_name_valid_n("sales", 0), "empty view");
    cr_expect_not(eg_name_valid_n(NULL, 3));
}
