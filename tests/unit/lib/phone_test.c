/* The E.164 rule shared by every entry point: the v3 and admin APIs, the voice stream, call-in
 * groups. */
#include <criterion/criterion.h>
#include <string.h>

#include "engage/phone.h"

Test(phone, accepts_plus_and_8_to_15_digits)
{
    const char *ok[] = {"+15551234567",  "+12345678",   "+123456789012345",
                        "+447911123456", "+4930123456", "+9999999999"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cr_expect(eg_phone_valid(ok[i]), "'%s' refused", ok[i]);
        cr_expect(eg_phone_valid_n(ok[i], strlen(ok[i])), "'%s' refused as a view", ok[i]);
    }
}

Test(phone, refuses_everything_else)
{
    const char *bad[] = {NULL,
                         "",
                         "+",
                         "15551234567",
                         "+1234567",
                         "+1234567890123456",
                         "+05551234567",
                         "+1555 1234567",
                         "+1555-123-4567",
                         "+1555123456a",
                         "++15551234567",
                         "+15551234567 ",
                         " +15551234567",
                         "+1555\n1234567",
                         "+\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xd9\xa7\xd9\xa8"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect_not(eg_phone_valid(bad[i]), "'%s' accepted", bad[i] ? bad[i] : "(null)");
}

Test(phone, a_view_is_bounded_by_its_length_and_refuses_nul_bytes)
{
    const char s[] = "+15551234567\0"
                     "99";
    cr_expect(eg_phone_valid_n(s, 12), "the first 12 bytes");
    cr_expect_not(eg_phone_valid_n(s, sizeof s - 1), "a NUL inside");
    cr_expect_not(eg_phone_valid_n("+15551234567", 5), "cut short");
}
