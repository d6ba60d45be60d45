/* A wake-up between threads of one scheduler: workers tell the relay there is outbox work and
 * tell the dispatcher a callback falls due earlier than it planned. */
#ifndef SCHED_WAKE_H
#define SCHED_WAKE_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool pending;
} wake_t;

void wake_init(wake_t *w);
void wake_destroy(wake_t *w);
/** Wake the waiter (or make its next wait return at once). */
void wake_signal(wake_t *w);
/** Wait until signalled or timeout_ms passed; returns true when signalled. Clears the signal. */
bool wake_wait(wake_t *w, int64_t timeout_ms);

#endif
