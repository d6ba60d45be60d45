/* lib/log.c: phone masking, and JSON-lines output on stderr (captured through a pipe). */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engage/json.h"
#include "engage/log.h"
#include "engage/timeutil.h"
#include "leakcheck.h"

/* ---- eg_log_mask_phone ---- */

static void assert_masked(const char *phone, const char *want)
{
    char out[64];

    memset(out, 'X', sizeof out);
    eg_log_mask_phone(phone, out, sizeof out);
    cr_assert_str_eq(out, want, "'%s' masked as '%s'", phone ? phone : "(null)", out);
}

Test(log, mask_phone_keeps_only_the_last_four_digits)
{
    assert_masked("+15551234567", "+*******4567");
    assert_masked("15551234567", "*******4567");
    assert_masked("+447911123456", "+********3456");
    assert_masked("+12345", "+*2345");
}

Test(log, mask_phone_short_numbers_and_null)
{
    assert_masked("1234", "1234");
    assert_masked("12", "12");
    assert_masked("", "");
    assert_masked(NULL, "-");
}

Test(log, mask_phone_keeps_last_four_digits_of_a_formatted_number)
{
    /* The contract is "all but its last 4 digits": separators are not digits. */
    assert_masked("+1 555 123 45 67", "+* *** *** 45 67");
    assert_masked("+1-555-123-4567", "+*-***-***-4567");
}

Test(log, mask_phone_truncates_without_revealing_more)
{
    char out[6];

    eg_log_mask_phone("+15551234567", out, sizeof out);
    cr_assert_str_eq(out, "+****");
    char one[1] = {'X'};
    eg_log_mask_phone("+15551234567", one, sizeof one);
    cr_assert_eq(one[0], '\0');
    char none[1] = {'X'};
    eg_log_mask_phone("+15551234567", none, 0);
    cr_assert_eq(none[0], 'X', "wrote into a zero-length buffer");
}

Test(log, mask_phone_never_shows_a_masked_digit)
{
    const char *phone = "+19876543210";
    char out[64];

    eg_log_mask_phone(phone, out, sizeof out);
    cr_assert_eq(strlen(out), strlen(phone));
    cr_assert_eq(strncmp(out + strlen(out) - 4, "3210", 4), 0);
    for (size_t i = 0; i + 4 < strlen(out); i++)
        cr_assert(out[i] < '0' || out[i] > '9', "digit shown at %zu: %s", i, out);
}

/* ---- output ---- */

typedef struct {
    int saved;
    int rd;
} capture_t;

static void capture_start(capture_t *c)
{
    int p[2];

    cr_assert_eq(pipe(p), 0);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    cr_assert_geq(c->saved, 0);
    cr_assert_geq(dup2(p[1], STDERR_FILENO), 0);
    close(p[1]);
    c->rd = p[0];
}

/* Restores stderr and returns everything written meanwhile (caller frees). */
static char *capture_end(capture_t *c)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t n;

    cr_assert_not_null(buf);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    while ((n = read(c->rd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    close(c->rd);
    buf[len] = '\0';
    return buf;
}

/* The one line in out, parsed; fails unless out is exactly one '\n'-terminated line. */
static eg_json_t *one_line(const char *out)
{
    size_t len = strlen(out);
    char err[200] = "";

    cr_assert_gt(len, 0, "nothing was logged");
    cr_assert_eq(out[len - 1], '\n', "line does not end with a newline: %s", out);
    cr_assert_eq(strchr(out, '\n'), out + len - 1, "more than one line: %s", out);
    eg_json_t *v = eg_json_parse(out, len - 1, 0, err, sizeof err);
    cr_assert_not_null(v, "not JSON (%s): %s", err, out);
    cr_assert(eg_json_is_object(v), "not an object: %s", out);
    return v;
}

static const char *field(const eg_json_t *v, const char *key)
{
    return eg_json_str(eg_json_get(v, key));
}

Test(log, line_is_one_json_object_with_level_svc_msg_and_corr_id)
{
    capture_t c;

    eg_log_init("api", "debug");
    eg_log_set_corr("3f0e5b2a-0000-7000-8000-000000000001");
    capture_start(&c);
    eg_log_info("booked %d callbacks for %s", 3, "sales");
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert_str_eq(field(v, "level"), "info");
    cr_assert_str_eq(field(v, "svc"), "api");
    cr_assert_str_eq(field(v, "msg"), "booked 3 callbacks for sales");
    cr_assert_str_eq(field(v, "corrId"), "3f0e5b2a-0000-7000-8000-000000000001");
    const char *ts = field(v, "ts");
    int64_t ms;
    cr_assert_not_null(ts);
    cr_assert_eq(eg_time_parse_iso(ts, strlen(ts), &ms), EG_OK, "ts %s", ts);
    cr_assert_lt(llabs((long long)(ms - eg_now_ms())), 5000);
    eg_json_free(v);
    free(out);
    eg_assert_no_leaks();
}

Test(log, no_corr_id_field_when_none_is_set)
{
    capture_t c;

    eg_log_init("scheduler", NULL);
    cr_assert_str_eq(eg_log_corr(), "");
    capture_start(&c);
    eg_log_warn("nothing to correlate");
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert_str_eq(field(v, "level"), "warn");
    cr_assert_str_eq(field(v, "svc"), "scheduler");
    cr_assert_null(eg_json_get(v, "corrId"));
    eg_json_free(v);
    free(out);
    eg_assert_no_leaks();
}

Test(log, corr_id_can_be_cleared)
{
    capture_t c;

    eg_log_init("api", "info");
    eg_log_set_corr("abc");
    cr_assert_str_eq(eg_log_corr(), "abc");
    eg_log_set_corr(NULL);
    cr_assert_str_eq(eg_log_corr(), "");
    capture_start(&c);
    eg_log_error("after clear");
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert_null(eg_json_get(v, "corrId"));
    cr_assert_str_eq(field(v, "level"), "error");
    eg_json_free(v);
    free(out);
}

static void *log_from_thread(void *arg)
{
    (void)arg;
    eg_log_info("from another thread");
    return NULL;
}

Test(log, corr_id_is_per_thread)
{
    capture_t c;
    pthread_t th;

    eg_log_init("api", "info");
    eg_log_set_corr("main-thread-corr");
    capture_start(&c);
    cr_assert_eq(pthread_create(&th, NULL, log_from_thread, NULL), 0);
    pthread_join(th, NULL);
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert_null(eg_json_get(v, "corrId"), "another thread's corrId leaked: %s", out);
    cr_assert_str_eq(eg_log_corr(), "main-thread-corr");
    eg_json_free(v);
    free(out);
}

Test(log, quotes_backslashes_and_control_characters_are_escaped)
{
    const char *msg = "say \"hi\" \\ path\nnew line\ttab\r\x01\x1f end";
    capture_t c;

    eg_log_init("svc\"x", "info");
    eg_log_set_corr("corr\"\n");
    capture_start(&c);
    eg_log_info("%s", msg);
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert_str_eq(field(v, "msg"), msg);
    cr_assert_str_eq(field(v, "svc"), "svc\"x");
    cr_assert_str_eq(field(v, "corrId"), "corr\"\n");
    for (const char *p = out; *p; p++)
        cr_assert((unsigned char)*p >= 0x20 || p[1] == '\0', "raw control byte 0x%02x in %s",
                  (unsigned char)*p, out);
    eg_json_free(v);
    free(out);
}

Test(log, levels_below_the_minimum_are_dropped)
{
    capture_t c;

    eg_log_init("api", "warn");
    capture_start(&c);
    eg_log_debug("debug line");
    eg_log_info("info line");
    char *out = capture_end(&c);
    cr_assert_str_eq(out, "", "logged below the level: %s", out);
    free(out);

    capture_start(&c);
    eg_log_warn("warn line");
    eg_log_error("error line");
    out = capture_end(&c);
    cr_assert(strstr(out, "\"warn line\"") != NULL, "%s", out);
    cr_assert(strstr(out, "\"error line\"") != NULL, "%s", out);
    free(out);
}

Test(log, default_level_is_info)
{
    capture_t c;

    eg_log_init("api", NULL);
    capture_start(&c);
    eg_log_debug("hidden");
    eg_log_info("shown");
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert_str_eq(field(v, "msg"), "shown");
    eg_json_free(v);
    free(out);
}

Test(log, long_messages_are_truncated_into_valid_json)
{
    const char *fill[] = {"a", "\"", "\x01"};
    capture_t c;

    eg_log_init("api", "info");
    eg_log_set_corr("corr");
    for (size_t f = 0; f < sizeof fill / sizeof *fill; f++) {
        char *big = malloc(6001);
        cr_assert_not_null(big);
        memset(big, fill[f][0], 6000);
        big[6000] = '\0';
        capture_start(&c);
        eg_log_info("%s", big);
        char *out = capture_end(&c);
        eg_json_t *v = one_line(out);
        const char *msg = field(v, "msg");

        cr_assert_not_null(msg);
        cr_assert_gt(strlen(msg), 100, "message lost");
        cr_assert_eq(strspn(msg, fill[f]), strlen(msg), "message altered");
        cr_assert_str_eq(field(v, "corrId"), "corr");
        eg_json_free(v);
        free(out);
        free(big);
    }
}

Test(log, invalid_utf8_in_a_message_still_gives_valid_json)
{
    capture_t c;

    eg_log_init("api", "info");
    capture_start(&c);
    eg_log_info("header value %s", "\xff\xfe\xc3");
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert(strstr(field(v, "msg"), "header value") != NULL);
    eg_json_free(v);
    free(out);
}

Test(log, truncation_never_splits_a_utf8_character)
{
    /* 2046 ASCII bytes then "é" (2 bytes): the 2 KiB message limit falls inside it. */
    char *msg = malloc(2046 + 3 + 1);
    capture_t c;

    cr_assert_not_null(msg);
    memset(msg, 'a', 2046);
    memcpy(msg + 2046, "\xc3\xa9z", 4);
    eg_log_init("api", "info");
    capture_start(&c);
    eg_log_info("%s", msg);
    char *out = capture_end(&c);
    eg_json_t *v = one_line(out);

    cr_assert_eq(strncmp(field(v, "msg"), msg, 2046), 0);
    eg_json_free(v);
    free(out);
    free(msg);
}
