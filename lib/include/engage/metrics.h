/* Prometheus metrics: counters, gauges and histograms, rendered in the text exposition format.
 * Updates are lock-free (atomics) and safe from any thread. */
#ifndef ENGAGE_METRICS_H
#define ENGAGE_METRICS_H
#include <stddef.h>
#include <stdint.h>

typedef struct eg_metrics eg_metrics_t;
typedef struct eg_counter eg_counter_t;
typedef struct eg_gauge eg_gauge_t;
typedef struct eg_histogram eg_histogram_t;

eg_metrics_t *eg_metrics_new(void);
void eg_metrics_free(eg_metrics_t *m);

/** Register (or find, when name+labels exist) a counter. labels is the inside of the braces,
 *  e.g. "code=\"200\"", or NULL. Series of one name share HELP/TYPE. Owned by m. */
eg_counter_t *eg_metrics_counter(eg_metrics_t *m, const char *name, const char *help,
                                 const char *labels);
void eg_counter_add(eg_counter_t *c, uint64_t n);
void eg_counter_inc(eg_counter_t *c);

eg_gauge_t *eg_metrics_gauge(eg_metrics_t *m, const char *name, const char *help,
                             const char *labels);
void eg_gauge_set(eg_gauge_t *g, double v);
void eg_gauge_add(eg_gauge_t *g, double delta);

/** A histogram with the given ascending upper bounds (copied; +Inf is implicit). */
eg_histogram_t *eg_metrics_histogram(eg_metrics_t *m, const char *name, const char *help,
                                     const char *labels, const double *bounds, size_t nbounds);
void eg_histogram_observe(eg_histogram_t *h, double v);

/** Render everything in the Prometheus text format (0.0.4). Caller frees with free(). */
char *eg_metrics_render(eg_metrics_t *m, size_t *len);

#endif
