/* Wake-ups on a condition variable with a sticky flag, so a signal sent while the waiter is
 * busy is not lost: its next wait returns at once. Names signalled meanwhile accumulate in a
 * bounded set (deduplicated by a linear scan: at most WAKE_NAMES short strings); when one does
 * not fit, the set says `all` instead, so a waiter never misses work, it only looks wider. */
#include "wake.h"

#include <string.h>
#include <time.h>

void wake_init(wake_t *w)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    w->pending = false;
    w->names.n = 0;
    w->names.all = false;
}

void wake_destroy(wake_t *w)
{
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
}

bool wake_names_has(const wake_names_t *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->name[i], name) == 0)
            return true;
    return false;
}

void wake_names_add(wake_names_t *set, const char *name)
{
    size_t len = strlen(name);
    if (wake_names_has(set, name))
        return;
    if (set->n == WAKE_NAMES || len >= WAKE_NAME_MAX) {
        set->all = true;
        return;
    }
    memcpy(set->name[set->n++], name, len + 1);
}

void wake_names_merge(wake_names_t *set, const wake_names_t *from)
{
    for (size_t i = 0; i < from->n; i++)
        wake_names_add(set, from->name[i]);
    if (from->all)
        set->all = true;
}

void wake_signal(wake_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->pending = true;
    w->names.all = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void wake_signal_name(wake_t *w, const char *name)
{
    pthread_mutex_lock(&w->lock);
    w->pending = true;
    wake_names_add(&w->names, name);
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

bool wake_has_name(wake_t *w, const char *name)
{
    pthread_mutex_lock(&w->lock);
    bool found = wake_names_has(&w->names, name);
    pthread_mutex_unlock(&w->lock);
    return found;
}

bool wake_wait_names(wake_t *w, int64_t timeout_ms, wake_names_t *out)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (timeout_ms < 0)
        timeout_ms = 0;
    deadline.tv_sec += (time_t)(timeout_ms / 1000);
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->pending && timeout_ms > 0) {
        if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != 0)
            break;
    }
    bool signalled = w->pending;
    w->pending = false;
    if (out) {
        out->n = 0;
        out->all = false;
        wake_names_merge(out, &w->names);
    }
    w->names.n = 0;
    w->names.all = false;
    pthread_mutex_unlock(&w->lock);
    return signalled;
}

bool wake_wait(wake_t *w, int64_t timeout_ms)
{
    return wake_wait_names(w, timeout_ms, NULL);
}
