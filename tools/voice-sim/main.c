/* voice-sim: plays the voice platform (the Voice Orchestration Service) for the dev stack, tests
 * and benchmarks. The stream contract it implements is docs/voice-stream.md.
 *
 * It reads `dial` and `cancel` commands from ENGAGE_VOICE_COMMANDS_STREAM with a consumer group
 * (ENGAGE_VOICE_SIM_GROUP, default "voice-sim") and answers each dial with `call.progress`
 * entries on ENGAGE_VOICE_EVENTS_STREAM, one every ENGAGE_VOICE_SIM_STEP_MS (default 200 ms), the
 * first one step after the dial. The outcome is chosen by the last two digits of the number:
 *
 *   ..91  DIALING, BUSY                                   (every attempt)
 *   ..92  DIALING, NO_ANSWER
 *   ..93  DIALING, ANSWERING_MACHINE
 *   ..94  attempt 1: DIALING, BUSY; later attempts: answered (below)
 *   ..95  DIALING, PERSON, CALL_ENDED                     (customer answered, no agent came)
 *   ..96  DIALING, FAILED                                 (permanent failure)
 *   ..97  DIALING, PERSON, then waits for the one agent of its virtual queue: AGENT_CONNECTED,
 *         and CALL_ENDED after ENGAGE_VOICE_SIM_TALK_MS (default 1000): a queue served at a
 *         known rate, for estimated-wait-time tests
 *   ..98  attempt 1: nothing at all (the platform lost the call); later attempts: answered
 *   other ENGAGE_VOICE_SIM_DEFAULT_OUTCOME: "answer" (default) = DIALING, PERSON,
 *         AGENT_CONNECTED, CALL_ENDED (the agent talks for one step); or busy, noanswer,
 *         machine, fail (the sequences of 91, 92, 93, 96)
 *
 * A `cancel` drops the remaining steps of that callback's call in progress; nothing more is
 * written for it. Every dial is counted in the hash `voicesim:dials` (field
 * <tenant>:<callback_id>:<attempt>) and every cancel in `voicesim:cancels`
 * (<tenant>:<callback_id>), so tests can prove that no attempt was dialled twice.
 *
 * Threading model: the main thread runs the service frame (eg_service_start: logs, /healthz,
 * /readyz, /metrics on ENGAGE_HTTP_PORT) and then waits for SIGTERM/SIGINT in eg_service_wait.
 * One loop thread (sim.c) owns the only long-lived Redis connection and the in-memory timer heap
 * of calls in progress; nothing else touches them. It wakes at least every ~100 ms (a read of the
 * group blocking 50 ms, which Redis rounds up to its 100 ms clock), so after a signal the main
 * thread sets its stop flag, joins it and exits 0 well within 5 s. The /readyz
 * check runs on HTTP threads and opens its own short-lived connection. Metrics are atomics. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engage/config.h"
#include "engage/log.h"
#include "engage/service.h"
#include "engage/store.h"
#include "outcome.h"
#include "sim.h"

int main(void)
{
    eg_config_t cfg;
    eg_service_t *svc = NULL;
    sim_t *sim = NULL;
    pthread_t loop;
    bool loop_started = false;
    char consumer[256];
    int rc = 1;

    eg_config_load(&cfg, "voice-sim");
    if (eg_service_start(&svc, &cfg, false) != EG_OK) {
        goto out;
    }

    const char *outcome = eg_config_str("ENGAGE_VOICE_SIM_DEFAULT_OUTCOME", "answer");
    sim_opts_t opts = {
        .redis_url = cfg.voice_redis_url,
        .commands_stream = cfg.voice_commands_stream,
        .events_stream = cfg.voice_events_stream,
        .group = eg_config_str("ENGAGE_VOICE_SIM_GROUP", "voice-sim"),
        .consumer = consumer,
        .step_ms = (int)eg_config_int("ENGAGE_VOICE_SIM_STEP_MS", 200, 1, 3600000),
        .talk_ms = (int)eg_config_int("ENGAGE_VOICE_SIM_TALK_MS", 1000, 1, 3600000),
        .metrics = eg_service_metrics(svc),
    };
    if (!outcome_parse(outcome, &opts.default_outcome)) {
        eg_log_error("ENGAGE_VOICE_SIM_DEFAULT_OUTCOME=%.40s is not one of answer, busy, "
                     "noanswer, machine, fail",
                     outcome);
        goto out;
    }
    /* The consumer name must survive a restart, so that the pending entries read by the
     * previous run are found again (with id 0): not the default instance id, which has the pid.
     * Entries stranded on a consumer that never comes back are claimed by another one. */
    const char *name =
        eg_config_str("ENGAGE_VOICE_SIM_CONSUMER", eg_config_str("ENGAGE_INSTANCE_ID", NULL));
    if (name != NULL) {
        snprintf(consumer, sizeof(consumer), "%s", name);
    } else {
        char host[128] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(consumer, sizeof(consumer), "voice-sim-%s", host);
    }

    sim = sim_new(&opts);
    if (pthread_create(&loop, NULL, sim_run, sim) != 0) {
        eg_log_error("cannot start the simulator thread");
        goto out;
    }
    loop_started = true;
    eg_health_add_check(eg_service_health(svc), "voice-redis", eg_ready_redis, cfg.voice_redis_url);
    eg_service_register(svc);
    eg_service_wait(svc);
    rc = 0;
out:
    if (loop_started) {
        sim_stop(sim);
        pthread_join(loop, NULL);
    }
    eg_service_stop(svc);
    sim_free(sim);
    eg_log_info("voice-sim stopped");
    eg_config_free(&cfg);
    return rc;
}
