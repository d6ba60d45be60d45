/* The ors-bridge's guarded write (services/ors-bridge/commands.c: commands_write and
 * commands_append) against the suite's redis-server. A dispatch redelivered by JetStream (the
 * bridge crashed between the XADD and the ack) must never dial an attempt twice: the guard key
 * is set in the same Lua step as the XADD. A new attempt is a new dial, and a stream key of the
 * wrong type is an error the caller sees, not a silent "already written". */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "commands.h"
#include "engage.pb-c.h"
#include "engage/config.h"
#include "engage/ids.h"
#include "engage/store.h"

/* Every key name these tests use: the bridge's guards (engage:<family>:<tenant>:<rest>, see
 * commands.c) and the test's own commands stream (family "test-commands"). */
static void key_of(char *out, size_t n, const char *family, const char *tenant, const char *rest)
{
    if (rest)
        snprintf(out, n, "engage:%s:%s:%s", family, tenant, rest);
    else
        snprintf(out, n, "engage:%s:%s", family, tenant);
}

/* Where the bridge keeps a guard of that name for the fixture's stream (its hash slot). */
static void guard_of(char *out, size_t n, const char *stream, const char *guard)
{
    char *k = commands_guard_key(stream, guard);
    cr_assert(strlen(k) < n);
    snprintf(out, n, "%s", k);
    free(k);
}

/* A bridge writing to a commands stream of the test's own, for a tenant of its own. */
typedef struct {
    eg_store_t *store;
    commands_t commands;
    eg_config_t cfg;
    bridge_t bridge;
    char tenant[EG_UUID_STR_LEN + 1], stream[200];
} bridge_fixture_t;

static void a_bridge(bridge_fixture_t *f)
{
    const char *url = getenv("ENGAGE_REDIS_URL");
    cr_assert(url && *url, "ENGAGE_REDIS_URL is not set: run through `make test`");
    memset(f, 0, sizeof *f);
    eg_uuid_v7_str(f->tenant);
    key_of(f->stream, sizeof f->stream, "test-commands", f->tenant, NULL);
    f->cfg.voice_commands_stream = f->stream;
    f->bridge.cfg = &f->cfg;
    cr_assert_eq(eg_store_open(&f->store, url, 2000), EG_OK);
    cr_assert_eq(commands_init(&f->commands, f->store), EG_OK);
}

static void close_bridge(bridge_fixture_t *f)
{
    eg_store_close(f->store);
}

/* A dispatch of callback id, attempt `attempt`, of the fixture's tenant. */
typedef struct {
    char id[EG_UUID_STR_LEN + 1], dispatch_id[EG_UUID_STR_LEN + 1];
    Eg__Callback cb;
    Eg__Dispatch d;
} dispatch_t;

static void a_dispatch(dispatch_t *x, const bridge_fixture_t *f, Eg__DispatchKind kind,
                       const char *id, unsigned attempt)
{
    memset(x, 0, sizeof *x);
    snprintf(x->id, sizeof x->id, "%s", id);
    eg_uuid_v7_str(x->dispatch_id);
    eg__callback__init(&x->cb);
    x->cb.id = x->id;
    x->cb.tenant_id = (char *)f->tenant;
    x->cb.phone = "+15550001001";
    x->cb.service = "support";
    x->cb.virtual_queue = "vq-support";
    x->cb.user_data_json = "{\"order\":\"A-17\"}";
    x->cb.attempts = attempt;
    eg__dispatch__init(&x->d);
    x->d.dispatch_id = x->dispatch_id;
    x->d.kind = kind;
    x->d.callback = &x->cb;
    x->d.attempt = attempt;
}

static long long ask_int(eg_store_t *s, const char *cmd, const char *key)
{
    const char *argv[] = {cmd, key};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(s, 2, argv, NULL, &r), EG_OK, "%s %s", cmd, key);
    long long v = r->integer;
    eg_reply_free(r);
    return v;
}

static long long stream_len(bridge_fixture_t *f)
{
    return ask_int(f->store, "XLEN", f->stream);
}

/* A field of the stream's newest entry (caller frees), or NULL. */
static char *last_field(bridge_fixture_t *f, const char *name)
{
    const char *argv[] = {"XREVRANGE", f->stream, "+", "-", "COUNT", "1"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(f->store, 6, argv, NULL, &r), EG_OK);
    cr_assert(r->type == EG_REPLY_ARRAY && r->elements == 1, "the stream has an entry");
    const eg_reply_t *fields = r->element[0]->element[1];
    char *v = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (strcmp(fields->element[i]->str, name) == 0)
            v = strdup(fields->element[i + 1]->str);
    eg_reply_free(r);
    return v;
}

static void expect_last_field(bridge_fixture_t *f, const char *name, const char *want)
{
    char *v = last_field(f, name);
    cr_expect(v && strcmp(v, want) == 0, "%s: '%s', want '%s'", name, v ? v : "(none)", want);
    free(v);
}

static bool write_one(bridge_fixture_t *f, const dispatch_t *x)
{
    bool written = true;
    eg_status_t st = commands_write(&f->commands, &f->bridge, &x->d, &written);
    cr_assert_eq(st, EG_OK, "%s", eg_status_str(st));
    return written;
}

Test(commands_script, a_dial_written_twice_for_the_same_attempt_is_one_entry)
{
    bridge_fixture_t f;
    a_bridge(&f);
    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    dispatch_t dial, redelivered;
    a_dispatch(&dial, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, id, 1);
    cr_expect(write_one(&f, &dial), "the first write dials");
    cr_expect_eq(stream_len(&f), 1);
    expect_last_field(&f, "type", "dial");
    expect_last_field(&f, "callback_id", id);
    expect_last_field(&f, "attempt", "1");
    expect_last_field(&f, "phone", "+15550001001");

    a_dispatch(&redelivered, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, id, 1);
    cr_expect(!write_one(&f, &redelivered), "*written false: dialled before");
    cr_expect(!write_one(&f, &dial), "and again");
    cr_expect_eq(stream_len(&f), 1, "the stream has one entry");

    char name[300], guard[400], rest[64], tag[260];
    snprintf(rest, sizeof rest, "%s:1", id);
    key_of(name, sizeof name, "dialed", f.tenant, rest);
    guard_of(guard, sizeof guard, f.stream, name);
    snprintf(tag, sizeof tag, "{%s}", f.stream);
    cr_expect(strstr(guard, tag) != NULL, "the guard %s has the stream's name as its hash tag",
              guard);
    long long ttl = ask_int(f.store, "PTTL", guard);
    cr_expect(ttl > 14LL * 24 * 3600 * 1000, "the guard outlives the callback (%lld ms)", ttl);
    close_bridge(&f);
}

Test(commands_script, a_new_attempt_dials_again)
{
    bridge_fixture_t f;
    a_bridge(&f);
    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    dispatch_t first, second, other;
    a_dispatch(&first, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, id, 1);
    a_dispatch(&second, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, id, 2);
    cr_expect(write_one(&f, &first));
    cr_expect(write_one(&f, &second), "attempt 2 is a new dial");
    cr_expect_eq(stream_len(&f), 2);
    expect_last_field(&f, "attempt", "2");
    cr_expect(!write_one(&f, &second), "attempt 2 once");

    char other_id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(other_id);
    a_dispatch(&other, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, other_id, 1);
    cr_expect(write_one(&f, &other), "another callback's attempt 1 is its own");
    cr_expect_eq(stream_len(&f), 3);
    close_bridge(&f);
}

Test(commands_script, a_cancel_is_written_once_and_does_not_block_the_dial)
{
    bridge_fixture_t f;
    a_bridge(&f);
    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    dispatch_t dial, cancel;
    a_dispatch(&dial, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, id, 1);
    a_dispatch(&cancel, &f, EG__DISPATCH_KIND__DISPATCH_CANCEL, id, 1);
    cr_expect(write_one(&f, &dial));
    cr_expect(write_one(&f, &cancel), "a cancel has its own guard");
    expect_last_field(&f, "type", "cancel");
    cr_expect(!write_one(&f, &cancel), "a cancel handled twice is written once");
    cr_expect_eq(stream_len(&f), 2);
    close_bridge(&f);
}

Test(commands_script, a_stream_key_of_the_wrong_type_is_a_protocol_error)
{
    bridge_fixture_t f;
    a_bridge(&f);
    const char *set[] = {"SET", f.stream, "not a stream"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(f.store, 3, set, NULL, &r), EG_OK);
    eg_reply_free(r);

    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    dispatch_t dial;
    a_dispatch(&dial, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, id, 1);
    bool written = true;
    eg_status_t st = commands_write(&f.commands, &f.bridge, &dial.d, &written);
    cr_expect_eq(st, EG_EPROTO, "%s", eg_status_str(st));
    cr_expect(!written);

    char guard[300];
    key_of(guard, sizeof guard, "test-guard", f.tenant, "reply");
    const char *fields[] = {"type", "reply", "callback_id", id};
    written = true;
    st = commands_append(&f.commands, guard, "60000", f.stream, fields, 2, &written);
    cr_expect_eq(st, EG_EPROTO, "commands_append too: %s", eg_status_str(st));
    cr_expect(!written);
    close_bridge(&f);
}

/* The bridge naks a dispatch whose write failed and writes it again when it comes back: that
 * retry must dial. Redis keeps a script's writes made before an error, so the guard is set
 * after the XADD: a failed XADD leaves none. */
Test(commands_script, a_dial_refused_by_a_broken_stream_is_written_by_its_retry)
{
    bridge_fixture_t f;
    a_bridge(&f);
    const char *set[] = {"SET", f.stream, "not a stream"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(f.store, 3, set, NULL, &r), EG_OK);
    eg_reply_free(r);
    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    dispatch_t dial;
    a_dispatch(&dial, &f, EG__DISPATCH_KIND__DISPATCH_DIAL, id, 1);
    bool written = true;
    cr_assert_eq(commands_write(&f.commands, &f.bridge, &dial.d, &written), EG_EPROTO);

    const char *del[] = {"DEL", f.stream};
    cr_assert_eq(eg_store_command(f.store, 2, del, NULL, &r), EG_OK);
    eg_reply_free(r);
    cr_expect(write_one(&f, &dial), "the retry dials");
    cr_expect_eq(stream_len(&f), 1);
    close_bridge(&f);
}

Test(commands_script, an_appended_entry_with_the_same_guard_is_written_once)
{
    bridge_fixture_t f;
    a_bridge(&f);
    char guard[300], id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    key_of(guard, sizeof guard, "test-guard", f.tenant, id);
    const char *fields[] = {"type", "reply", "callback_id", id};
    bool written = false;
    cr_assert_eq(commands_append(&f.commands, guard, "60000", f.stream, fields, 2, &written),
                 EG_OK);
    cr_expect(written);
    expect_last_field(&f, "callback_id", id);
    written = true;
    cr_assert_eq(commands_append(&f.commands, guard, "60000", f.stream, fields, 2, &written),
                 EG_OK);
    cr_expect(!written, "the guard was set");
    cr_expect_eq(stream_len(&f), 1);
    char stored[400];
    guard_of(stored, sizeof stored, f.stream, guard);
    long long ttl = ask_int(f.store, "PTTL", stored);
    cr_expect(ttl > 50000 && ttl <= 60000, "the guard lives guard_ttl_ms (%lld)", ttl);
    close_bridge(&f);
}
