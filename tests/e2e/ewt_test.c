/* End to end: the estimated wait time (mode1) against a queue served at a known rate. Numbers
 * ending in 97 make voice-sim queue each call for its virtual queue's single agent, who talks
 * ENGAGE_VOICE_SIM_TALK_MS (1 s by default): the queue serves one callback a second. */
#define _DEFAULT_SOURCE
#include <time.h>

#include "e2e.h"
#include "engage/ids.h"
#include "engage/timeutil.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *create(const char *service, unsigned base, int i)
{
    char body[200];
    snprintf(body, sizeof body, "{\"serviceName\":\"%s\",\"phoneNumber\":\"+1777%04u%02d97\"}",
             service, base % 10000u, i);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/create", e2e_env("ENGAGE_API_KEY"), body);
    cr_assert_eq(r.status, 200, "create %d: %d %s", i, r.status, e2e_message(&r));
    char *id = strdup(e2e_data_str(&r, "id"));
    e2e_free(&r);
    return id;
}

static bool is_state(const char *id, const char *state)
{
    char body[96];
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    e2e_resp_t r = e2e_post("/engagement/v3/callbacks/retrieve", e2e_env("ENGAGE_API_KEY"), body);
    const char *s = e2e_data_str(&r, "callbackState");
    bool yes = s && (strcmp(s, state) == 0 || strcmp(s, "COMPLETED") == 0);
    e2e_free(&r);
    return yes;
}

/* Wait until the callback has an agent (PROCESSING, or already COMPLETED); returns when. */
static int64_t wait_agent(const char *id, int64_t limit_ms)
{
    int64_t deadline = eg_mono_ms() + limit_ms;
    while (eg_mono_ms() < deadline) {
        if (is_state(id, "PROCESSING"))
            return eg_mono_ms();
        sleep_ms(20);
    }
    cr_assert_fail("callback %s never reached an agent", id);
    return 0;
}

Test(ewt, mode1_estimate_is_within_20_percent_of_the_measured_wait, .timeout = 60)
{
    char service[48], path[160];
    unsigned r;
    eg_random_bytes(&r, sizeof r);
    snprintf(service, sizeof service, "ewt-%u", r);
    snprintf(path, sizeof path, "/ges/api/v1/services/%s", service);
    e2e_resp_t put =
        e2e_call("PUT", path, e2e_env("ENGAGE_ADMIN_KEY"), NULL, "{\"maxActivePerNumber\":5}");
    cr_assert_eq(put.status, 201);
    e2e_free(&put);

    char *ids[7];
    for (int i = 0; i < 6; i++)
        ids[i] = create(service, r, i);
    /* Once the third takes the agent, two serves are behind us: the queue's rate is known. */
    wait_agent(ids[2], 20000);
    int64_t t0 = eg_mono_ms();
    snprintf(path, sizeof path, "/engagement/v3/estimated-wait-time?virtual-queues=%s&mode=mode1",
             service);
    e2e_resp_t est = e2e_call("GET", path, e2e_env("ENGAGE_API_KEY"), NULL, NULL);
    cr_assert_eq(est.status, 200);
    eg_json_t *item = eg_json_array_get(eg_json_get(est.body, "data"), 0);
    int64_t estimate = eg_json_int(eg_json_get(item, "estimatedWaitTime"));
    cr_assert_eq(eg_json_int(eg_json_get(item, "resultCode")), 0, "%s",
                 eg_json_str(eg_json_get(item, "message")));
    e2e_free(&est);
    ids[6] = create(service, r, 6);
    int64_t waited = wait_agent(ids[6], 30000) - t0;
    double error = (double)(estimate * 1000 - waited) / (double)waited;
    fprintf(stderr, "EWT mode1 estimate %lld s, measured wait %lld ms, error %.0f%%\n",
            (long long)estimate, (long long)waited, error * 100);
    cr_expect(error <= 0.20 && error >= -0.20, "estimate %lld s vs measured %lld ms (%.0f%% off)",
              (long long)estimate, (long long)waited, error * 100);
    for (int i = 0; i < 7; i++)
        free(ids[i]);
}
