/* A wake-up between threads of one scheduler: workers tell the relay there is outbox work and
 * tell the dispatcher a callback falls due earlier than it planned. A wake-up may carry names
 * (the relay's: the tenants whose outbox a worker just wrote), kept in a small bounded set until
 * the waiter takes them. */
#ifndef SCHED_WAKE_H
#define SCHED_WAKE_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Names a wake-up holds between two waits; one more distinct name sets `all` instead. */
#define WAKE_NAMES 64
/** Longest name kept, NUL included (a tenant id is 36 characters); a longer one sets `all`. */
#define WAKE_NAME_MAX 64

/** The names a wait took (wake_wait_names). */
typedef struct {
    size_t n;
    /** A plain wake_signal, or names that did not fit: the waiter must look everywhere. */
    bool all;
    char name[WAKE_NAMES][WAKE_NAME_MAX];
} wake_names_t;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool pending;
    wake_names_t names; /**< guarded by lock */
} wake_t;

void wake_init(wake_t *w);
void wake_destroy(wake_t *w);
/** Wake the waiter (or make its next wait return at once). Carries no name, so a waiter that
 *  uses names sees `all`. Thread-safe. */
void wake_signal(wake_t *w);
/** Wake the waiter about name (borrowed; copied): it joins the set the next wait takes, once
 *  however often it is signalled. Thread-safe; a mutex, a scan of at most WAKE_NAMES names. */
void wake_signal_name(wake_t *w, const char *name);
/** True when name waits in the set (a writer signalled it since the last wait). Thread-safe. */
bool wake_has_name(wake_t *w, const char *name);
/** Wait until signalled or timeout_ms passed; returns true when signalled. Clears the signal
 *  and the names. */
bool wake_wait(wake_t *w, int64_t timeout_ms);
/** As wake_wait, and moves the names signalled since the last wait into *out (emptied first,
 *  also on a timeout). timeout_ms 0 only collects what is there. */
bool wake_wait_names(wake_t *w, int64_t timeout_ms, wake_names_t *out);

/** True when set holds name. Not locked. */
bool wake_names_has(const wake_names_t *set, const char *name);
/** Add name to a set (as wake_signal_name does); `all` when it does not fit. Not locked. */
void wake_names_add(wake_names_t *set, const char *name);
/** Add every name of from to set, and its `all`. Not locked. */
void wake_names_merge(wake_names_t *set, const wake_names_t *from);

#endif
