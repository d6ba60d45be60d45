/* lib/config.c: redis URLs, typed environment variables and the defaults every service starts
 * from. Each Criterion test runs in its own process, so setenv here touches no other test. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engage/config.h"
#include "leakcheck.h"

extern char **environ;

/* The suite runs tests with its own ENGAGE_* environment: start each test from none. */
static void clear_engage_env(void)
{
    char *names[256];
    size_t n = 0;

    for (char **e = environ; *e && n < 256; e++) {
        if (strncmp(*e, "ENGAGE_", 7) == 0) {
            size_t len = strcspn(*e, "=");
            names[n] = strndup(*e, len);
            cr_assert_not_null(names[n]);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsetenv(names[i]);
        free(names[i]);
    }
    unsetenv("EGTEST_VAR");
}

TestSuite(config, .init = clear_engage_env);

/* ---- eg_redis_url_parse ---- */

static eg_redis_url_t parse_ok(const char *url)
{
    eg_redis_url_t u;
    cr_assert_eq(eg_redis_url_parse(url, &u), EG_OK, "'%s' refused", url);
    return u;
}

static void assert_url_refused(const char *url)
{
    eg_redis_url_t u;
    eg_status_t st = eg_redis_url_parse(url, &u);
    if (st == EG_OK)
        eg_redis_url_free(&u);
    cr_assert_eq(st, EG_EINVAL, "'%s' accepted", url);
    cr_assert_null(u.host, "'%s': host left allocated after a refusal", url);
    cr_assert_null(u.password, "'%s': password left allocated after a refusal", url);
}

Test(config, redis_url_host_only_defaults_port_and_db)
{
    eg_redis_url_t u = parse_ok("redis://cache.internal");

    cr_assert_str_eq(u.host, "cache.internal");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 0);
    cr_assert_null(u.password);
    eg_redis_url_free(&u);
    cr_assert_null(u.host);
    eg_assert_no_leaks();
}

Test(config, redis_url_host_and_port)
{
    eg_redis_url_t u = parse_ok("redis://127.0.0.1:6380");

    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 0);
    eg_redis_url_free(&u);
    eg_assert_no_leaks();
}

Test(config, redis_url_password_port_and_db)
{
    eg_redis_url_t u = parse_ok("redis://:s3cret@redis:7000/5");

    cr_assert_str_eq(u.host, "redis");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 5);
    cr_assert_str_eq(u.password, "s3cret");
    eg_redis_url_free(&u);
    eg_assert_no_leaks();
}

Test(config, redis_url_acl_user_is_ignored_but_password_kept)
{
    eg_redis_url_t u = parse_ok("redis://default:pw@localhost/2");

    cr_assert_str_eq(u.host, "localhost");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 2);
    cr_assert_str_eq(u.password, "pw");
    eg_redis_url_free(&u);
    eg_assert_no_leaks();
}

Test(config, redis_url_db_without_port_and_trailing_slash)
{
    eg_redis_url_t u = parse_ok("redis://h/3");

    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 3);
    eg_redis_url_free(&u);

    u = parse_ok("redis://h:1234/");
    cr_assert_eq(u.port, 1234);
    cr_assert_eq(u.db, 0);
    eg_redis_url_free(&u);
    eg_assert_no_leaks();
}

Test(config, redis_url_refuses_other_schemes_and_shapes)
{
    assert_url_refused(NULL);
    assert_url_refused("");
    assert_url_refused("http://localhost:6379");
    assert_url_refused("rediss://localhost:6379");
    assert_url_refused("REDIS://localhost");
    assert_url_refused("localhost:6379");
    assert_url_refused("redis://");
    assert_url_refused("redis://:6379");
    assert_url_refused("redis://:pw@");
    assert_url_refused("redis://pw@host"); /* a userinfo without ':' */
    eg_assert_no_leaks();
}

Test(config, redis_url_refuses_bad_ports)
{
    assert_url_refused("redis://h:");
    assert_url_refused("redis://h:0");
    assert_url_refused("redis://h:65536");
    assert_url_refused("redis://h:-1");
    assert_url_refused("redis://h:abc");
    assert_url_refused("redis://h:99999999999999999999");
    eg_assert_no_leaks();
}

Test(config, redis_url_refuses_trailing_junk)
{
    assert_url_refused("redis://h:6379x");
    assert_url_refused("redis://h:6379 ");
    assert_url_refused("redis://h:6379/1x");
    assert_url_refused("redis://h/abc");
    assert_url_refused("redis://h/1/2");
    assert_url_refused("redis://h:6379/-1");
    assert_url_refused("redis://:pw@h:6379/db");
    eg_assert_no_leaks();
}

Test(config, redis_url_port_and_db_are_plain_digits)
{
    /* The grammar is redis://[:password@]host[:port][/db]: a port or db with a sign or
     * leading blanks is not one, even if strtol would read it. */
    assert_url_refused("redis://h: 6379");
    assert_url_refused("redis://h:+6379");
    assert_url_refused("redis://h/ 1");
    assert_url_refused("redis://h/+1");
}

Test(config, redis_url_free_accepts_null_and_twice)
{
    eg_redis_url_t u = parse_ok("redis://:p@h");

    eg_redis_url_free(&u);
    eg_redis_url_free(&u);
    eg_redis_url_free(NULL);
    eg_assert_no_leaks();
}

/* ---- typed variables ---- */

Test(config, str_unset_empty_and_set)
{
    cr_assert_str_eq(eg_config_str("EGTEST_VAR", "def"), "def");
    cr_assert_null(eg_config_str("EGTEST_VAR", NULL));
    setenv("EGTEST_VAR", "", 1);
    cr_assert_str_eq(eg_config_str("EGTEST_VAR", "def"), "def");
    setenv("EGTEST_VAR", "value", 1);
    cr_assert_str_eq(eg_config_str("EGTEST_VAR", "def"), "value");
}

Test(config, int_in_range_is_read)
{
    setenv("EGTEST_VAR", "42", 1);
    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 0, 100), 42);
    setenv("EGTEST_VAR", "-5", 1);
    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, -10, 10), -5);
}

Test(config, int_bounds_are_inclusive)
{
    setenv("EGTEST_VAR", "1", 1);
    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 1, 10), 1);
    setenv("EGTEST_VAR", "10", 1);
    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 1, 10), 10);
    setenv("EGTEST_VAR", "0", 1);
    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 1, 10), 7);
    setenv("EGTEST_VAR", "11", 1);
    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 1, 10), 7);
}

Test(config, int_invalid_or_unset_gives_default)
{
    const char *bad[] = {"abc", "12abc", "1.5", "0x10", "99999999999999999999999", "-"};

    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 0, 100), 7);
    setenv("EGTEST_VAR", "", 1);
    cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 0, 100), 7);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("EGTEST_VAR", bad[i], 1);
        cr_assert_eq(eg_config_int("EGTEST_VAR", 7, 0, 100), 7, "'%s' not refused", bad[i]);
    }
}

Test(config, bool_true_values)
{
    const char *yes[] = {"1", "true", "yes", "on"};

    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        setenv("EGTEST_VAR", yes[i], 1);
        cr_assert(eg_config_bool("EGTEST_VAR", false), "'%s' not true", yes[i]);
    }
}

Test(config, bool_false_values_override_a_true_default)
{
    const char *no[] = {"0", "false", "no", "off"};

    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        setenv("EGTEST_VAR", no[i], 1);
        cr_assert_not(eg_config_bool("EGTEST_VAR", true), "'%s' not false", no[i]);
    }
}

Test(config, bool_unset_or_empty_gives_default)
{
    cr_assert(eg_config_bool("EGTEST_VAR", true));
    cr_assert_not(eg_config_bool("EGTEST_VAR", false));
    setenv("EGTEST_VAR", "", 1);
    cr_assert(eg_config_bool("EGTEST_VAR", true));
    cr_assert_not(eg_config_bool("EGTEST_VAR", false));
}

/* ---- eg_config_load ---- */

Test(config, load_defaults_with_no_environment)
{
    eg_config_t cfg;

    cr_assert_eq(eg_config_load(&cfg, "scheduler"), EG_OK);
    cr_assert_str_eq(cfg.service, "scheduler");
    cr_assert_str_eq(cfg.nats_url, "nats://127.0.0.1:4222");
    cr_assert_str_eq(cfg.redis_url, "redis://127.0.0.1:6379");
    cr_assert_str_eq(cfg.voice_redis_url, "redis://127.0.0.1:6379");
    cr_assert_str_eq(cfg.pg_dsn, "host=127.0.0.1 dbname=engage");
    cr_assert_str_eq(cfg.http_addr, "127.0.0.1");
    cr_assert_eq(cfg.http_port, 0);
    cr_assert_eq(cfg.http_threads, 16);
    cr_assert_null(cfg.consul_addr);
    cr_assert_str_eq(cfg.advertise_addr, "127.0.0.1");
    cr_assert_null(cfg.key_pepper);
    cr_assert_str_eq(cfg.log_level, "info");
    cr_assert_str_eq(cfg.voice_events_stream, "engage:voice:events");
    cr_assert_str_eq(cfg.voice_commands_stream, "engage:voice:commands");
    cr_assert_str_eq(cfg.voice_deadletter_stream, "engage:voice:deadletter");
    cr_assert_eq(cfg.workers, 4);

    /* <service>-<hostname>-<pid> */
    char want_suffix[32];
    snprintf(want_suffix, sizeof want_suffix, "-%ld", (long)getpid());
    cr_assert_not_null(cfg.instance_id);
    cr_assert_eq(strncmp(cfg.instance_id, "scheduler-", 10), 0, "%s", cfg.instance_id);
    size_t n = strlen(cfg.instance_id), m = strlen(want_suffix);
    cr_assert(n > 10 + m && strcmp(cfg.instance_id + n - m, want_suffix) == 0, "%s",
              cfg.instance_id);
    eg_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(config, load_api_listens_on_8080_by_default)
{
    eg_config_t cfg;

    cr_assert_eq(eg_config_load(&cfg, "api"), EG_OK);
    cr_assert_eq(cfg.http_port, 8080);
    eg_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(config, load_environment_overrides)
{
    eg_config_t cfg;

    setenv("ENGAGE_NATS_URL", "nats://n1:4333", 1);
    setenv("ENGAGE_REDIS_URL", "redis://r1:6390/1", 1);
    setenv("ENGAGE_PG_DSN", "host=db dbname=x", 1);
    setenv("ENGAGE_HTTP_ADDR", "0.0.0.0", 1);
    setenv("ENGAGE_HTTP_PORT", "9090", 1);
    setenv("ENGAGE_HTTP_THREADS", "3", 1);
    setenv("ENGAGE_CONSUL_ADDR", "http://consul:8500", 1);
    setenv("ENGAGE_INSTANCE_ID", "api-7", 1);
    setenv("ENGAGE_KEY_PEPPER", "pep", 1);
    setenv("ENGAGE_LOG_LEVEL", "debug", 1);
    setenv("ENGAGE_VOICE_EVENTS_STREAM", "ev", 1);
    setenv("ENGAGE_VOICE_COMMANDS_STREAM", "cmd", 1);
    setenv("ENGAGE_VOICE_DEADLETTER_STREAM", "dl", 1);
    setenv("ENGAGE_WORKERS", "8", 1);
    cr_assert_eq(eg_config_load(&cfg, "api"), EG_OK);
    cr_assert_str_eq(cfg.nats_url, "nats://n1:4333");
    cr_assert_str_eq(cfg.redis_url, "redis://r1:6390/1");
    cr_assert_str_eq(cfg.voice_redis_url, "redis://r1:6390/1", "voice redis follows redis");
    cr_assert_str_eq(cfg.pg_dsn, "host=db dbname=x");
    cr_assert_str_eq(cfg.http_addr, "0.0.0.0");
    cr_assert_str_eq(cfg.advertise_addr, "0.0.0.0", "advertise follows http addr");
    cr_assert_eq(cfg.http_port, 9090);
    cr_assert_eq(cfg.http_threads, 3);
    cr_assert_str_eq(cfg.consul_addr, "http://consul:8500");
    cr_assert_str_eq(cfg.instance_id, "api-7");
    cr_assert_str_eq(cfg.key_pepper, "pep");
    cr_assert_str_eq(cfg.log_level, "debug");
    cr_assert_str_eq(cfg.voice_events_stream, "ev");
    cr_assert_str_eq(cfg.voice_commands_stream, "cmd");
    cr_assert_str_eq(cfg.voice_deadletter_stream, "dl");
    cr_assert_eq(cfg.workers, 8);
    eg_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(config, load_separate_voice_redis_and_advertise_addr)
{
    eg_config_t cfg;

    setenv("ENGAGE_REDIS_URL", "redis://r1", 1);
    setenv("ENGAGE_VOICE_REDIS_URL", "redis://voice:6400", 1);
    setenv("ENGAGE_ADVERTISE_ADDR", "10.0.0.5", 1);
    cr_assert_eq(eg_config_load(&cfg, "scheduler"), EG_OK);
    cr_assert_str_eq(cfg.redis_url, "redis://r1");
    cr_assert_str_eq(cfg.voice_redis_url, "redis://voice:6400");
    cr_assert_str_eq(cfg.advertise_addr, "10.0.0.5");
    eg_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(config, load_out_of_range_numbers_fall_back)
{
    eg_config_t cfg;

    setenv("ENGAGE_HTTP_PORT", "70000", 1);
    setenv("ENGAGE_HTTP_THREADS", "0", 1);
    setenv("ENGAGE_WORKERS", "many", 1);
    cr_assert_eq(eg_config_load(&cfg, "api"), EG_OK);
    cr_assert_eq(cfg.http_port, 8080);
    cr_assert_eq(cfg.http_threads, 16);
    cr_assert_eq(cfg.workers, 4);
    eg_config_free(&cfg);
    eg_assert_no_leaks();
}

Test(config, free_clears_and_accepts_null)
{
    eg_config_t cfg;

    cr_assert_eq(eg_config_load(&cfg, "api"), EG_OK);
    eg_config_free(&cfg);
    cr_assert_null(cfg.service);
    cr_assert_null(cfg.redis_url);
    eg_config_free(&cfg);
    eg_config_free(NULL);
    eg_assert_no_leaks();
}
