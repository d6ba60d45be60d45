/* JSON-lines logging. Each line is built in a stack buffer and written with one write(2), so
 * lines from many threads never interleave. The correlation id is thread-local: the HTTP layer
 * and the bus set it for the request being handled, and every line logged meanwhile carries it. */
#include "engage/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engage/timeutil.h"

static char service_name[64] = "engage";
static eg_log_level_t min_level = EG_LOG_INFO;
static _Thread_local char corr[64];

static const char *level_names[] = {"debug", "info", "warn", "error"};

void eg_log_init(const char *service, const char *level)
{
    if (service)
        snprintf(service_name, sizeof service_name, "%s", service);
    min_level = EG_LOG_INFO;
    if (level) {
        for (int i = 0; i < 4; i++)
            if (strcmp(level, level_names[i]) == 0)
                min_level = (eg_log_level_t)i;
    }
}

void eg_log_set_corr(const char *corr_id)
{
    if (corr_id)
        snprintf(corr, sizeof corr, "%s", corr_id);
    else
        corr[0] = '\0';
}

const char *eg_log_corr(void)
{
    return corr;
}

/* Length of the valid UTF-8 sequence starting at s (1-4), or 0 when it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Append s to out as the inside of a JSON string, escaping what JSON requires. Bytes that are
 * not valid UTF-8 (from a client, or a sequence cut by truncation) become '?', so every line
 * stays valid JSON. */
static size_t escape(char *out, size_t pos, size_t cap, const char *s)
{
    while (*s && pos + 7 < cap) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)s);
            if (n == 0) {
                out[pos++] = '?';
                s++;
            } else {
                memcpy(out + pos, s, n);
                pos += n;
                s += n;
            }
            continue;
        }
        s++;
        if (c == '"' || c == '\\') {
            out[pos++] = '\\';
            out[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
        } else {
            out[pos++] = (char)c;
        }
    }
    return pos;
}

void eg_log(eg_log_level_t level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char ts[EG_ISO_LEN + 1];
    eg_time_format_iso(eg_now_ms(), ts);
    char line[4096];
    size_t pos = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"svc\":\"",
                                  ts, level_names[level]);
    pos = escape(line, pos, sizeof line - 64, service_name);
    if (corr[0]) {
        pos += (size_t)snprintf(line + pos, sizeof line - pos, "\",\"corrId\":\"");
        pos = escape(line, pos, sizeof line - 64, corr);
    }
    pos += (size_t)snprintf(line + pos, sizeof line - pos, "\",\"msg\":\"");
    pos = escape(line, pos, sizeof line - 4, msg);
    line[pos++] = '"';
    line[pos++] = '}';
    line[pos++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}

void eg_log_mask_phone(const char *phone, char *out, size_t outlen)
{
    if (!outlen)
        return;
    if (!phone) {
        snprintf(out, outlen, "-");
        return;
    }
    /* Keep the last four digits (not characters: "+1 555 123 45 67" keeps "45 67"). */
    size_t n = strlen(phone), i, digits_after = 0;
    size_t keep_from = n;
    for (size_t j = n; j > 0 && digits_after < 4; j--) {
        if (phone[j - 1] >= '0' && phone[j - 1] <= '9') {
            digits_after++;
            keep_from = j - 1;
        }
    }
    for (i = 0; i < n && i + 1 < outlen; i++) {
        char c = phone[i];
        out[i] = (i < keep_from && c >= '0' && c <= '9') ? '*' : c;
    }
    out[i] = '\0';
}
