/* lib/metrics.c: the text a Prometheus server scrapes, checked exactly and with promtool. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engage/metrics.h"

static char *render(eg_metrics_t *m)
{
    size_t len = 0;
    char *text = eg_metrics_render(m, &len);

    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    return text;
}

Test(metrics, empty_registry_renders_nothing)
{
    eg_metrics_t *m = eg_metrics_new();
    char *text = render(m);

    cr_assert_str_eq(text, "");
    free(text);
    eg_metrics_free(m);
    eg_metrics_free(NULL);
}

Test(metrics, series_are_grouped_under_one_help_and_type)
{
    eg_metrics_t *m = eg_metrics_new();
    eg_counter_t *ok = eg_metrics_counter(m, "http_requests_total", "Requests served.",
                                          "code=\"200\",method=\"GET\"");
    eg_gauge_t *depth = eg_metrics_gauge(m, "queue_depth", "Callbacks waiting.", NULL);
    eg_counter_t *err = eg_metrics_counter(m, "http_requests_total", "Requests served.",
                                           "code=\"500\",method=\"GET\"");
    char *text;

    eg_counter_add(ok, 5);
    eg_counter_inc(err);
    eg_gauge_set(depth, 4);
    eg_gauge_add(depth, -1.5);
    text = render(m);
    cr_assert_str_eq(text, "# HELP http_requests_total Requests served.\n"
                           "# TYPE http_requests_total counter\n"
                           "http_requests_total{code=\"200\",method=\"GET\"} 5\n"
                           "http_requests_total{code=\"500\",method=\"GET\"} 1\n"
                           "# HELP queue_depth Callbacks waiting.\n"
                           "# TYPE queue_depth gauge\n"
                           "queue_depth 2.5\n");
    free(text);
    eg_metrics_free(m);
}

Test(metrics, same_name_and_labels_is_the_same_series)
{
    eg_metrics_t *m = eg_metrics_new();
    eg_counter_t *a = eg_metrics_counter(m, "x_total", "X.", "code=\"200\"");
    eg_counter_t *b = eg_metrics_counter(m, "x_total", "X.", " code = \"200\" ");
    eg_counter_t *c = eg_metrics_counter(m, "x_total", "X.", "code=\"201\"");
    eg_counter_t *d = eg_metrics_counter(m, "y_total", "Y.", NULL);
    eg_counter_t *e = eg_metrics_counter(m, "y_total", "Y.", "");

    cr_assert_eq(a, b);
    cr_assert_neq(a, c);
    cr_assert_eq(d, e);
    eg_metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative_with_labels_before_le)
{
    eg_metrics_t *m = eg_metrics_new();
    const double bounds[] = {0.25, 0.5, 1};
    eg_histogram_t *h = eg_metrics_histogram(m, "http_request_duration_seconds", "Latency.",
                                             "route=\"/a\"", bounds, 3);
    eg_histogram_t *bare = eg_metrics_histogram(m, "job_seconds", "Jobs.", NULL, bounds, 1);
    const double obs[] = {0.25, 0.125, 0.5, 2, 0.75};
    char *text;

    for (size_t i = 0; i < 5; i++)
        eg_histogram_observe(h, obs[i]);
    eg_histogram_observe(bare, 0.5);
    text = render(m);
    cr_assert_str_eq(text, "# HELP http_request_duration_seconds Latency.\n"
                           "# TYPE http_request_duration_seconds histogram\n"
                           "http_request_duration_seconds_bucket{route=\"/a\",le=\"0.25\"} 2\n"
                           "http_request_duration_seconds_bucket{route=\"/a\",le=\"0.5\"} 3\n"
                           "http_request_duration_seconds_bucket{route=\"/a\",le=\"1\"} 4\n"
                           "http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 5\n"
                           "http_request_duration_seconds_sum{route=\"/a\"} 3.625\n"
                           "http_request_duration_seconds_count{route=\"/a\"} 5\n"
                           "# HELP job_seconds Jobs.\n"
                           "# TYPE job_seconds histogram\n"
                           "job_seconds_bucket{le=\"0.25\"} 0\n"
                           "job_seconds_bucket{le=\"+Inf\"} 1\n"
                           "job_seconds_sum 0.5\n"
                           "job_seconds_count 1\n");
    free(text);
    eg_metrics_free(m);
}

Test(metrics, help_and_label_values_are_escaped)
{
    eg_metrics_t *m = eg_metrics_new();
    char *text;

    /* Already-escaped values stay as they are; raw newlines, quotes and backslashes get
     * escaped. */
    eg_counter_inc(eg_metrics_counter(m, "esc_total", "Line one\nC:\\dir \"quoted\"",
                                      "path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\""));
    eg_counter_inc(
        eg_metrics_counter(m, "esc_total", "ignored", "path=\"two\nlines\",q=\"a\"b\\c\""));
    text = render(m);
    cr_assert_str_eq(text, "# HELP esc_total Line one\\nC:\\\\dir \"quoted\"\n"
                           "# TYPE esc_total counter\n"
                           "esc_total{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\"} 1\n"
                           "esc_total{path=\"two\\nlines\",q=\"a\\\"b\\\\c\"} 1\n");
    free(text);
    eg_metrics_free(m);
}

Test(metrics, gauge_special_values)
{
    eg_metrics_t *m = eg_metrics_new();
    char *text;

    eg_gauge_set(eg_metrics_gauge(m, "g_nan", "N.", NULL), NAN);
    eg_gauge_set(eg_metrics_gauge(m, "g_inf", "I.", NULL), INFINITY);
    eg_gauge_set(eg_metrics_gauge(m, "g_small", "S.", NULL), 0.1);
    eg_gauge_set(eg_metrics_gauge(m, "g_big", "B.", NULL), 12345678901.0);
    text = render(m);
    cr_assert_not_null(strstr(text, "\ng_nan NaN\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\ng_inf +Inf\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\ng_small 0.1\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\ng_big 12345678901\n"), "%s", text);
    free(text);
    eg_metrics_free(m);
}

Test(metrics, one_name_with_two_types_is_a_bug, .signal = SIGABRT)
{
    eg_metrics_t *m = eg_metrics_new();

    eg_metrics_counter(m, "dup_total", "D.", NULL);
    eg_metrics_gauge(m, "dup_total", "D.", NULL);
}

Test(metrics, invalid_metric_name_is_a_bug, .signal = SIGABRT)
{
    eg_metrics_counter(eg_metrics_new(), "bad-name", "B.", NULL);
}

/* ---- concurrency ---- */

#define THREADS 4
#define PER_THREAD 100000

struct shared {
    eg_counter_t *c;
    eg_gauge_t *g;
    eg_histogram_t *h;
};

static void *hammer(void *arg)
{
    struct shared *s = arg;

    for (int i = 0; i < PER_THREAD; i++) {
        eg_counter_inc(s->c);
        eg_gauge_add(s->g, 1.0);
        eg_histogram_observe(s->h, (i % 2) ? 0.5 : 2.0);
    }
    return NULL;
}

Test(metrics, concurrent_updates_lose_nothing)
{
    eg_metrics_t *m = eg_metrics_new();
    const double bounds[] = {1};
    struct shared s = {
        eg_metrics_counter(m, "hits_total", "Hits.", NULL),
        eg_metrics_gauge(m, "level", "Level.", NULL),
        eg_metrics_histogram(m, "size", "Size.", NULL, bounds, 1),
    };
    pthread_t t[THREADS];
    char *text;

    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    text = render(m);
    cr_assert_not_null(strstr(text, "\nhits_total 400000\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nlevel 400000\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nsize_bucket{le=\"1\"} 200000\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nsize_count 400000\n"), "%s", text);
    cr_assert_not_null(strstr(text, "\nsize_sum 500000\n"), "%s", text);
    free(text);
    eg_metrics_free(m);
}

/* ---- promtool ---- */

/* Run promtool's linter on text; returns its exit status and its report in out. */
static int promtool(const char *text, char *out, size_t outlen)
{
    char path[] = "/tmp/engage-metrics-XXXXXX";
    char cmd[128];
    int fd = mkstemp(path);
    FILE *p;
    size_t n = 0;
    size_t r;
    int status;

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    while (n + 1 < outlen) {
        r = fread(out + n, 1, outlen - 1 - n, p);
        if (r == 0)
            break;
        n += r;
    }
    out[n] = '\0';
    status = pclose(p);
    unlink(path);
    cr_assert(WIFEXITED(status), "promtool did not run");
    return WEXITSTATUS(status);
}

Test(metrics, promtool_accepts_the_output)
{
    eg_metrics_t *m = eg_metrics_new();
    const double bounds[] = {0.005, 0.01, 0.1, 1, 10};
    char report[4096];
    char *text;
    int rc;

    eg_counter_add(eg_metrics_counter(m, "engage_http_requests_total",
                                      "HTTP requests by \"route\" and code.\nSecond line \\.",
                                      "route=\"/callbacks/create\",code=\"200\""),
                   12);
    eg_counter_inc(eg_metrics_counter(m, "engage_http_requests_total", "",
                                      "route=\"we\"ird\nroute\\\\\",code=\"500\""));
    eg_gauge_set(eg_metrics_gauge(m, "engage_queue_depth", "Callbacks queued.", "tenant=\"t1\""),
                 -3.25);
    eg_gauge_set(eg_metrics_gauge(m, "engage_up", "1 when serving.", NULL), 1);
    for (int i = 0; i < 50; i++)
        eg_histogram_observe(eg_metrics_histogram(m, "engage_http_request_duration_seconds",
                                                  "Request latency.", "route=\"/x\"", bounds, 5),
                             i * 0.01);
    text = render(m);
    rc = promtool(text, report, sizeof report);
    cr_assert_eq(rc, 0, "promtool exit %d:\n%s\non:\n%s", rc, report, text);
    cr_assert_str_eq(report, "", "promtool reported:\n%s\non:\n%s", report, text);
    free(text);
    eg_metrics_free(m);
}

Test(metrics, promtool_check_can_fail)
{
    char report[4096];

    /* The check above is only worth something if promtool rejects bad text. */
    cr_assert_neq(promtool("# TYPE x counter\nx{a=\"b} 1\n", report, sizeof report), 0);
}
