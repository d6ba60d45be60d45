/* The simulator's loop: reads commands from the voice commands stream, plays each dial as a
 * timed series of call.progress entries on the events stream, and drops a call on cancel. */
#ifndef VOICE_SIM_SIM_H
#define VOICE_SIM_SIM_H
#include "engage/metrics.h"
#include "outcome.h"

/** Settings of a simulator. Strings are borrowed and must outlive the sim. */
typedef struct {
    const char *redis_url;       /* the voice Redis */
    const char *commands_stream; /* read with a consumer group */
    const char *events_stream;   /* call.progress entries are added here */
    const char *group;           /* consumer group on commands_stream */
    const char *consumer;        /* this process's consumer name in the group */
    int step_ms;                 /* delay between two progress steps of one call */
    int talk_ms;                 /* how long an agent of a single-agent queue talks */
    outcome_t default_outcome;   /* for numbers without a special suffix */
    eg_metrics_t *metrics;       /* borrowed; the sim registers its series here */
} sim_opts_t;

typedef struct sim sim_t;

/** A new simulator (not yet connected). Free with sim_free after sim_run has returned. */
sim_t *sim_new(const sim_opts_t *opts);

/** The loop; run it on its own thread (pthread start routine, arg = sim_t *). Returns NULL once
 *  sim_stop has been called, within about 100 ms when Redis answers (bounded by the connect
 *  timeout when it does not). It never returns on a Redis error: it logs and retries. */
void *sim_run(void *sim);

/** Ask the loop to return. Safe from any thread. */
void sim_stop(sim_t *sim);

/** Free (drops calls still in progress). Accepts NULL. */
void sim_free(sim_t *sim);

#endif
