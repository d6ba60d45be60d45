/* Prometheus metrics, written by hand (Debian has no Prometheus C client).
 *
 * A registry holds families (one per metric name: HELP, TYPE and its series in registration
 * order); a series is one label set with its value. Registration and rendering take the
 * registry's mutex; updates never do: counters are atomic uint64, gauges are doubles stored
 * bit for bit in an atomic uint64 (compare-and-swap to add), and a histogram keeps one atomic
 * count per bucket (non-cumulative, so an observation touches a single bucket) plus an atomic
 * sum. Rendering accumulates the buckets, so +Inf always equals _count even while
 * observations race with the scrape.
 *
 * Label sets come from callers as text ("code=\"200\",method=\"GET\""). They are parsed once
 * at registration and written back in canonical form, with values escaped the way the text
 * format wants (backslash, double quote, newline), whether or not the caller escaped them.
 * A malformed metric or label name is a bug in the caller and aborts at registration. */
#include "engage/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>

#include "engage/buf.h"
#include "engage/log.h"
#include "engage/mem.h"

#define RENDER_MAX (64u * 1024 * 1024)

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

struct eg_counter {
    _Atomic uint64_t v;
};

struct eg_gauge {
    _Atomic uint64_t bits;
};

struct eg_histogram {
    double *bounds;
    size_t nbounds;
    _Atomic uint64_t *buckets; /* nbounds + 1, the last is +Inf; not cumulative */
    _Atomic uint64_t sum_bits;
};

struct series {
    char *labels; /* canonical, "" when none */
    union {
        struct eg_counter counter;
        struct eg_gauge gauge;
        struct eg_histogram hist;
    } u;
    struct series *next;
};

struct family {
    char *name;
    char *help;
    enum kind kind;
    struct series *first;
    struct series *last;
    struct family *next;
};

struct eg_metrics {
    pthread_mutex_t mu;
    struct family *first;
    struct family *last;
};

static const char *kind_names[] = {"counter", "gauge", "histogram"};

static uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double delta)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    uint64_t upd;

    do {
        upd = dbl_bits(bits_dbl(old) + delta);
    } while (!atomic_compare_exchange_weak_explicit(a, &old, upd, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static void die(const char *what, const char *name, const char *labels)
{
    eg_log_error("metrics: %s: name \"%s\" labels \"%s\"", what, name, labels ? labels : "");
    abort();
}

/* ---- names and labels ---- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool valid_metric_name(const char *s)
{
    if (!is_alpha(*s) && *s != ':')
        return false;
    for (s++; *s; s++)
        if (!is_alpha(*s) && !is_digit(*s) && *s != ':')
            return false;
    return true;
}

static bool value_ends(const char *p)
{
    /* A quote closes a value when only blanks stand between it and a comma or the end. */
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' || *p == ',';
}

/* Parse name="value" pairs separated by commas and write them in canonical form into b.
 * Returns false on a malformed label name or a missing '=' or opening quote. */
static bool canonical_labels(const char *s, eg_buf_t *b)
{
    bool first = true;

    while (*s) {
        const char *name;
        size_t nlen;

        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (*s == '\0')
            break;
        name = s;
        if (!is_alpha(*s))
            return false;
        while (is_alpha(*s) || is_digit(*s))
            s++;
        nlen = (size_t)(s - name);
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s++ != '=')
            return false;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s++ != '"')
            return false;
        if (!first)
            eg_buf_puts(b, ",");
        first = false;
        eg_buf_append(b, name, nlen);
        eg_buf_puts(b, "=\"");
        for (; *s; s++) {
            if (*s == '"' && value_ends(s))
                break;
            if (*s == '\\' && (s[1] == '\\' || s[1] == '"' || s[1] == 'n')) {
                eg_buf_append(b, s, 2);
                s++;
            } else if (*s == '\\') {
                eg_buf_puts(b, "\\\\");
            } else if (*s == '"') {
                eg_buf_puts(b, "\\\"");
            } else if (*s == '\n') {
                eg_buf_puts(b, "\\n");
            } else {
                eg_buf_append(b, s, 1);
            }
        }
        if (*s != '"')
            return false;
        s++;
        eg_buf_puts(b, "\"");
    }
    return true;
}

/* ---- registration ---- */

eg_metrics_t *eg_metrics_new(void)
{
    eg_metrics_t *m = eg_xcalloc(1, sizeof *m);

    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void free_series(struct family *f, struct series *s)
{
    if (f->kind == KIND_HISTOGRAM) {
        free(s->u.hist.bounds);
        free(s->u.hist.buckets);
    }
    free(s->labels);
    free(s);
}

void eg_metrics_free(eg_metrics_t *m)
{
    struct family *f;

    if (m == NULL)
        return;
    f = m->first;
    while (f) {
        struct family *fnext = f->next;
        struct series *s = f->first;
        while (s) {
            struct series *snext = s->next;
            free_series(f, s);
            s = snext;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fnext;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* Find or create the series name{labels}; called with m->mu held. *created says whether the
 * caller must initialise it. */
static struct series *lookup(eg_metrics_t *m, enum kind kind, const char *name, const char *help,
                             const char *labels, bool *created)
{
    struct family *f;
    struct series *s;
    eg_buf_t canon;

    *created = false;
    if (!valid_metric_name(name))
        die("invalid metric name", name, labels);
    eg_buf_init(&canon, 65536);
    if (labels && !canonical_labels(labels, &canon))
        die("invalid labels", name, labels);

    for (f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            break;
    if (f && f->kind != kind)
        die("metric registered again with another type", name, labels);
    if (f == NULL) {
        f = eg_xcalloc(1, sizeof *f);
        f->name = eg_xstrdup(name);
        f->help = eg_xstrdup(help ? help : "");
        f->kind = kind;
        if (m->last)
            m->last->next = f;
        else
            m->first = f;
        m->last = f;
    }
    for (s = f->first; s; s = s->next)
        if (strcmp(s->labels, canon.data ? canon.data : "") == 0)
            goto out;
    s = eg_xcalloc(1, sizeof *s);
    s->labels = eg_buf_steal(&canon, NULL);
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    *created = true;
out:
    eg_buf_free(&canon);
    return s;
}

eg_counter_t *eg_metrics_counter(eg_metrics_t *m, const char *name, const char *help,
                                 const char *labels)
{
    bool created;
    struct series *s;

    pthread_mutex_lock(&m->mu);
    s = lookup(m, KIND_COUNTER, name, help, labels, &created);
    if (created)
        atomic_init(&s->u.counter.v, 0);
    pthread_mutex_unlock(&m->mu);
    return &s->u.counter;
}

eg_gauge_t *eg_metrics_gauge(eg_metrics_t *m, const char *name, const char *help,
                             const char *labels)
{
    bool created;
    struct series *s;

    pthread_mutex_lock(&m->mu);
    s = lookup(m, KIND_GAUGE, name, help, labels, &created);
    if (created)
        atomic_init(&s->u.gauge.bits, dbl_bits(0.0));
    pthread_mutex_unlock(&m->mu);
    return &s->u.gauge;
}

eg_histogram_t *eg_metrics_histogram(eg_metrics_t *m, const char *name, const char *help,
                                     const char *labels, const double *bounds, size_t nbounds)
{
    bool created;
    struct series *s;
    struct eg_histogram *h;

    for (size_t i = 1; i < nbounds; i++)
        if (!(bounds[i] > bounds[i - 1]))
            die("histogram bounds not ascending", name, labels);
    pthread_mutex_lock(&m->mu);
    s = lookup(m, KIND_HISTOGRAM, name, help, labels, &created);
    h = &s->u.hist;
    if (created) {
        /* A +Inf bound given explicitly is the implicit one. */
        if (nbounds > 0 && isinf(bounds[nbounds - 1]) && bounds[nbounds - 1] > 0)
            nbounds--;
        h->nbounds = nbounds;
        h->bounds = eg_xcalloc(nbounds ? nbounds : 1, sizeof *h->bounds);
        if (nbounds)
            memcpy(h->bounds, bounds, nbounds * sizeof *bounds);
        h->buckets = eg_xcalloc(nbounds + 1, sizeof *h->buckets);
        for (size_t i = 0; i <= nbounds; i++)
            atomic_init(&h->buckets[i], 0);
        atomic_init(&h->sum_bits, dbl_bits(0.0));
    }
    pthread_mutex_unlock(&m->mu);
    return h;
}

/* ---- updates ---- */

void eg_counter_add(eg_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void eg_counter_inc(eg_counter_t *c)
{
    atomic_fetch_add_explicit(&c->v, 1, memory_order_relaxed);
}

void eg_gauge_set(eg_gauge_t *g, double v)
{
    atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void eg_gauge_add(eg_gauge_t *g, double delta)
{
    atomic_add_double(&g->bits, delta);
}

void eg_histogram_observe(eg_histogram_t *h, double v)
{
    size_t i = 0;

    while (i < h->nbounds && !(v <= h->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&h->sum_bits, v);
}

/* ---- rendering ---- */

/* The shortest text that reads back as the same double, in the forms Prometheus parses. */
static void fmt_double(double d, char out[32])
{
    if (isnan(d)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(d)) {
        strcpy(out, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

static void put_help(eg_buf_t *b, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            eg_buf_puts(b, "\\\\");
        else if (*p == '\n')
            eg_buf_puts(b, "\\n");
        else
            eg_buf_append(b, p, 1);
    }
}

static void put_sample(eg_buf_t *b, const char *name, const char *suffix, const char *labels,
                       const char *extra, const char *value)
{
    bool any = labels[0] || (extra && extra[0]);

    eg_buf_puts(b, name);
    eg_buf_puts(b, suffix);
    if (any) {
        eg_buf_puts(b, "{");
        eg_buf_puts(b, labels);
        if (labels[0] && extra && extra[0])
            eg_buf_puts(b, ",");
        if (extra)
            eg_buf_puts(b, extra);
        eg_buf_puts(b, "}");
    }
    eg_buf_puts(b, " ");
    eg_buf_puts(b, value);
    eg_buf_puts(b, "\n");
}

static void render_histogram(eg_buf_t *b, const struct family *f, const struct series *s)
{
    const struct eg_histogram *h = &s->u.hist;
    uint64_t cum = 0;
    char num[32];
    char le[48];

    for (size_t i = 0; i <= h->nbounds; i++) {
        char bound[32];
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds)
            fmt_double(h->bounds[i], bound);
        else
            strcpy(bound, "+Inf");
        snprintf(le, sizeof le, "le=\"%s\"", bound);
        snprintf(num, sizeof num, "%" PRIu64, cum);
        put_sample(b, f->name, "_bucket", s->labels, le, num);
    }
    fmt_double(bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)), num);
    put_sample(b, f->name, "_sum", s->labels, NULL, num);
    snprintf(num, sizeof num, "%" PRIu64, cum);
    put_sample(b, f->name, "_count", s->labels, NULL, num);
}

char *eg_metrics_render(eg_metrics_t *m, size_t *len)
{
    eg_buf_t b;
    char num[32];

    eg_buf_init(&b, RENDER_MAX);
    pthread_mutex_lock(&m->mu);
    for (const struct family *f = m->first; f; f = f->next) {
        eg_buf_printf(&b, "# HELP %s ", f->name);
        put_help(&b, f->help);
        eg_buf_printf(&b, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (const struct series *s = f->first; s; s = s->next) {
            switch (f->kind) {
            case KIND_COUNTER:
                snprintf(num, sizeof num, "%" PRIu64,
                         atomic_load_explicit(&s->u.counter.v, memory_order_relaxed));
                put_sample(&b, f->name, "", s->labels, NULL, num);
                break;
            case KIND_GAUGE:
                fmt_double(bits_dbl(atomic_load_explicit(&s->u.gauge.bits, memory_order_relaxed)),
                           num);
                put_sample(&b, f->name, "", s->labels, NULL, num);
                break;
            case KIND_HISTOGRAM:
                render_histogram(&b, f, s);
                break;
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return eg_buf_steal(&b, len);
}
