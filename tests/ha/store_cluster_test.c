/* lib/store's cluster client against a real Redis Cluster (3 masters + 3 replicas, started by
 * tests/ha/store_cluster_test.sh, seeds in ENGAGE_TEST_REDIS_CLUSTER; run with --jobs 1: the
 * tests move slots and masters):
 *   - a batch over many tenants' keys reaches the right masters and keeps its order;
 *   - a script runs on every master (each loads it on its first NOSCRIPT);
 *   - a script whose keys span slots is refused before it is sent;
 *   - a slot migrated (SETSLOT MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE) while a thread writes
 *     into it: no call fails, no MOVED/ASK/TRYAGAIN reaches the caller, every write is there;
 *   - a manual failover of a master under writes: likewise;
 *   - a master killed (SIGKILL) under writes, with min_replicas=1, and started again 3 s later
 *     (its replica, promoted, has no replica of its own until then: no write can be
 *     acknowledged): the writes stop for less than 10 s and every write answered EG_OK is
 *     there after the failover. The restart uses the topology's own redis_node_start
 *     (ENGAGE_TEST_STACK_REDIS, ENGAGE_TEST_REDIS_DIR). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engage/store.h"
#include "engage/timeutil.h"

static const char *seeds(void)
{
    const char *v = getenv("ENGAGE_TEST_REDIS_CLUSTER");
    cr_assert(v && *v, "ENGAGE_TEST_REDIS_CLUSTER (seed host:port list) is not set");
    return v;
}

static eg_store_t *open_cluster_with(const char *params)
{
    char url[512];
    snprintf(url, sizeof url, "redis-cluster://%s%s", seeds(), params);
    eg_store_t *s = NULL;
    eg_status_t st = eg_store_open(&s, url, 5000);
    cr_assert_eq(st, EG_OK, "cannot open the cluster: %s", eg_status_str(st));
    return s;
}

static eg_store_t *open_cluster(void)
{
    return open_cluster_with("");
}

static eg_store_t *open_node(const char *host, int port)
{
    char url[300];
    snprintf(url, sizeof url, "redis://%s:%d", host, port);
    eg_store_t *s = NULL;
    cr_assert_eq(eg_store_open(&s, url, 5000), EG_OK, "cannot open node %s:%d", host, port);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A master, as CLUSTER SLOTS names it. */
typedef struct {
    char host[64];
    int port;
    char id[64];
    int start, end;
} master_t;

/* The master serving slot, and up to 8 masters in all. */
static size_t masters(master_t *out, size_t cap)
{
    const char *first = seeds();
    char host[64];
    int port = 0;
    cr_assert_eq(sscanf(first, "%63[^:]:%d", host, &port), 2);
    eg_store_t *n = open_node(host, port);
    const char *argv[] = {"CLUSTER", "SLOTS"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(n, 2, argv, NULL, &r), EG_OK);
    size_t k = 0;
    for (size_t i = 0; i < r->elements && k < cap; i++) {
        const eg_reply_t *e = r->element[i], *m = e->element[2];
        master_t *o = &out[k++];
        snprintf(o->host, sizeof o->host, "%s", m->element[0]->str);
        o->port = (int)m->element[1]->integer;
        snprintf(o->id, sizeof o->id, "%s", m->element[2]->str);
        o->start = (int)e->element[0]->integer;
        o->end = (int)e->element[1]->integer;
    }
    eg_reply_free(r);
    eg_store_close(n);
    return k;
}

static int keyslot(const char *key)
{
    master_t m[64];
    masters(m, 64);
    eg_store_t *n = open_node(m[0].host, m[0].port);
    const char *argv[] = {"CLUSTER", "KEYSLOT", key};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(n, 3, argv, NULL, &r), EG_OK);
    int slot = (int)r->integer;
    eg_reply_free(r);
    eg_store_close(n);
    return slot;
}

static const master_t *owner(const master_t *m, size_t n, int slot)
{
    for (size_t i = 0; i < n; i++)
        if (slot >= m[i].start && slot <= m[i].end)
            return &m[i];
    cr_assert_fail("no master serves slot %d", slot);
    return NULL;
}

static eg_reply_t *must(eg_store_t *s, int argc, const char **argv)
{
    eg_reply_t *r = NULL;
    eg_status_t st = eg_store_command(s, argc, argv, NULL, &r);
    cr_assert_eq(st, EG_OK, "%s: %s (%s)", argv[0], eg_status_str(st), eg_store_error(s));
    return r;
}

Test(store_cluster, a_batch_reaches_every_master_in_order)
{
    eg_store_t *s = open_cluster();
    enum { N = 120 };
    char keys[N][64], vals[N][32];
    const char *sets[N][3], *gets[N][2];
    const char *const *cmds[N];
    int argcs[N];
    eg_reply_t *rep[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "t:{batch-%d-%d}:k", (int)getpid(), i);
        snprintf(vals[i], sizeof vals[i], "v%d", i);
        sets[i][0] = "SET", sets[i][1] = keys[i], sets[i][2] = vals[i];
        cmds[i] = sets[i];
        argcs[i] = 3;
    }
    cr_assert_eq(eg_store_pipeline(s, N, argcs, cmds, rep), EG_OK, "%s", eg_store_error(s));
    for (int i = 0; i < N; i++) {
        cr_expect_eq(rep[i]->type, EG_REPLY_STATUS, "SET %d: %s", i, rep[i]->str);
        eg_reply_free(rep[i]);
        gets[i][0] = "GET", gets[i][1] = keys[i];
        cmds[i] = gets[i];
        argcs[i] = 2;
    }
    cr_assert_eq(eg_store_pipeline(s, N, argcs, cmds, rep), EG_OK, "%s", eg_store_error(s));
    for (int i = 0; i < N; i++) {
        cr_expect(rep[i]->type == EG_REPLY_STRING && strcmp(rep[i]->str, vals[i]) == 0,
                  "GET %d answered %s", i, rep[i]->str ? rep[i]->str : "(nil)");
        eg_reply_free(rep[i]);
    }
    /* Each key is on the master of its slot (asked directly). */
    master_t m[64];
    size_t nm = masters(m, 64);
    cr_assert_eq(nm >= 3, true, "expected 3 masters, CLUSTER SLOTS shows %zu ranges", nm);
    int seen[64] = {0};
    for (int i = 0; i < N; i += 7) {
        const master_t *o = owner(m, nm, keyslot(keys[i]));
        seen[o - m] = 1;
        eg_store_t *n = open_node(o->host, o->port);
        const char *get[] = {"GET", keys[i]};
        eg_reply_t *r = must(n, 2, get);
        cr_expect(r->type == EG_REPLY_STRING && strcmp(r->str, vals[i]) == 0,
                  "key %s is not on %s:%d", keys[i], o->host, o->port);
        eg_reply_free(r);
        eg_store_close(n);
    }
    int used = 0;
    for (size_t i = 0; i < nm; i++)
        used += seen[i];
    cr_expect_geq(used, 2, "the keys should spread over the masters");
    eg_store_close(s);
}

static const char incr2_lua[] = "redis.call('INCR', KEYS[1]) return redis.call('INCR', KEYS[2])";

Test(store_cluster, scripts_run_on_every_master_and_cross_slot_keys_are_refused)
{
    eg_store_t *s = open_cluster();
    int h = -1;
    cr_assert_eq(eg_store_script_add(s, incr2_lua, &h), EG_OK, "%s", eg_store_error(s));
    for (int i = 0; i < 30; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "t:{scr-%d-%d}:a", (int)getpid(), i);
        snprintf(b, sizeof b, "t:{scr-%d-%d}:b", (int)getpid(), i);
        const char *argv[] = {a, b};
        eg_reply_t *r = NULL;
        eg_status_t st = eg_store_eval(s, h, 2, 2, argv, NULL, &r);
        cr_expect_eq(st, EG_OK, "tenant %d: %s (%s)", i, eg_status_str(st), eg_store_error(s));
        if (st == EG_OK)
            cr_expect_eq(r->integer, 1);
        eg_reply_free(r);
    }
    char a[64], b[64];
    snprintf(a, sizeof a, "t:{x-%d}:a", (int)getpid());
    snprintf(b, sizeof b, "t:{y-%d}:b", (int)getpid());
    const char *argv[] = {a, b};
    eg_reply_t *r = NULL;
    cr_expect_eq(eg_store_eval(s, h, 2, 2, argv, NULL, &r), EG_EINVAL,
                 "keys of two tenants in one script must be refused");
    cr_expect_null(r);
    const char *get[] = {"GET", a};
    r = must(s, 2, get);
    cr_expect_eq(r->type, EG_REPLY_NIL, "the refused script must not have run");
    eg_reply_free(r);
    eg_store_close(s);
}

/* The load: a thread writing into one tenant's slot through its own store. */
typedef struct {
    char tag[48];
    atomic_bool stop;
    long ok, failed;
    char first_error[256];
} load_t;

static void *load_run(void *arg)
{
    load_t *l = arg;
    eg_store_t *s = open_cluster();
    int h = -1;
    if (eg_store_script_add(s, incr2_lua, &h) != EG_OK) {
        l->failed++;
        eg_store_close(s);
        return NULL;
    }
    char a[96], b[96];
    snprintf(a, sizeof a, "t:{%s}:a", l->tag);
    snprintf(b, sizeof b, "t:{%s}:b", l->tag);
    while (!atomic_load(&l->stop)) {
        char k[96], v[32];
        snprintf(k, sizeof k, "t:{%s}:k%ld", l->tag, l->ok);
        snprintf(v, sizeof v, "%ld", l->ok);
        const char *argv[] = {a, b};
        const char *set[] = {"SET", k, v};
        const char *const *cmds[] = {set};
        int argcs[] = {3};
        eg_reply_t *r = NULL, *after[1] = {NULL};
        eg_status_t st = eg_store_eval_then(s, h, 2, 2, argv, NULL, &r, 1, argcs, cmds, after);
        bool good = st == EG_OK && r->type == EG_REPLY_INTEGER && after[0]->type == EG_REPLY_STATUS;
        if (good) {
            l->ok++;
        } else {
            if (l->failed++ == 0)
                snprintf(l->first_error, sizeof l->first_error, "%s: %s / %s", eg_status_str(st),
                         eg_store_error(s), after[0] && after[0]->str ? after[0]->str : "");
        }
        eg_reply_free(r);
        eg_reply_free(after[0]);
        if (l->ok % 8 == 0)
            sleep_ms(1); /* a steady load, not a flood */
    }
    eg_store_close(s);
    return NULL;
}

static void check_load(load_t *l)
{
    cr_expect_eq(l->failed, 0, "%ld of %ld calls failed; first: %s", l->failed, l->ok + l->failed,
                 l->first_error);
    cr_expect_gt(l->ok, 50, "the load made only %ld calls", l->ok);
    eg_store_t *s = open_cluster();
    char a[96];
    snprintf(a, sizeof a, "t:{%s}:a", l->tag);
    const char *get[] = {"GET", a};
    eg_reply_t *r = must(s, 2, get);
    cr_expect(r->type == EG_REPLY_STRING && atol(r->str) == l->ok, "counter %s after %ld scripts",
              r->str ? r->str : "(nil)", l->ok);
    eg_reply_free(r);
    for (long i = 0; i < l->ok; i += l->ok / 20 + 1) {
        char k[96];
        snprintf(k, sizeof k, "t:{%s}:k%ld", l->tag, i);
        const char *g[] = {"GET", k};
        r = must(s, 2, g);
        cr_expect(r->type == EG_REPLY_STRING && atol(r->str) == i, "key %s lost", k);
        eg_reply_free(r);
    }
    eg_store_close(s);
}

static void setslot(const master_t *on, int slot, const char *how, const char *id)
{
    eg_store_t *n = open_node(on->host, on->port);
    char sl[16];
    snprintf(sl, sizeof sl, "%d", slot);
    const char *argv[] = {"CLUSTER", "SETSLOT", sl, how, id};
    eg_reply_free(must(n, 5, argv));
    eg_store_close(n);
}

Test(store_cluster, a_slot_migrated_under_load_loses_nothing)
{
    load_t l = {0};
    snprintf(l.tag, sizeof l.tag, "mig-%d", (int)getpid());
    char probe[96];
    snprintf(probe, sizeof probe, "{%s}", l.tag);
    int slot = keyslot(probe);
    master_t m[64];
    size_t nm = masters(m, 64);
    const master_t *src = owner(m, nm, slot);
    const master_t *dst = NULL; /* another master (CLUSTER SLOTS lists a master per range) */
    for (size_t i = 0; i < nm && !dst; i++)
        if (strcmp(m[i].id, src->id) != 0)
            dst = &m[i];
    cr_assert_not_null(dst, "only one master");
    pthread_t t;
    pthread_create(&t, NULL, load_run, &l);
    sleep_ms(300);

    setslot(dst, slot, "IMPORTING", src->id);
    setslot(src, slot, "MIGRATING", dst->id);
    eg_store_t *sn = open_node(src->host, src->port);
    char sl[16], port[16];
    snprintf(sl, sizeof sl, "%d", slot);
    snprintf(port, sizeof port, "%d", dst->port);
    int moved = 0;
    bool empty = false;
    for (int round = 0; round < 2000 && !empty; round++) {
        const char *getkeys[] = {"CLUSTER", "GETKEYSINSLOT", sl, "20"};
        eg_reply_t *keys = must(sn, 4, getkeys);
        empty = keys->elements == 0 && round > 5;
        const char *argv[7 + 20] = {"MIGRATE", dst->host, port, "", "0", "5000", "KEYS"};
        int argc = 7;
        for (size_t i = 0; i < keys->elements; i++)
            argv[argc++] = keys->element[i]->str;
        if (keys->elements)
            eg_reply_free(must(sn, argc, argv));
        moved += (int)keys->elements;
        eg_reply_free(keys);
        sleep_ms(10); /* the load runs between the steps */
    }
    eg_store_close(sn);
    /* A slot given away with keys left behind loses them (Redis deletes a "dirty" slot's keys):
     * the test must have moved them all. */
    cr_assert(empty, "keys were still left in slot %d after 2000 rounds", slot);
    /* The new owner first, then the old one (as redis-cli does); the others learn it from the
     * cluster bus. */
    setslot(dst, slot, "NODE", dst->id);
    setslot(src, slot, "NODE", dst->id);
    sleep_ms(500);
    atomic_store(&l.stop, true);
    pthread_join(t, NULL);
    cr_log_info("slot %d moved from %d to %d: %d keys migrated, %ld calls", slot, src->port,
                dst->port, moved, l.ok);
    cr_expect_gt(moved, 0, "nothing was migrated");
    check_load(&l);
}

Test(store_cluster, a_manual_failover_under_load_loses_nothing)
{
    load_t l = {0};
    snprintf(l.tag, sizeof l.tag, "fo-%d", (int)getpid());
    char probe[96];
    snprintf(probe, sizeof probe, "{%s}", l.tag);
    int slot = keyslot(probe);
    master_t m[64];
    size_t nm = masters(m, 64);
    const master_t *o = owner(m, nm, slot);
    /* Its replica: the node whose CLUSTER NODES line says "slave <master id>". */
    eg_store_t *n = open_node(o->host, o->port);
    const char *nodes[] = {"CLUSTER", "NODES"};
    eg_reply_t *r = must(n, 2, nodes);
    eg_store_close(n);
    char rhost[64] = "";
    int rport = 0;
    for (char *line = strtok(r->str, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "slave") && strstr(line, o->id)) {
            char id[64], addr[96];
            if (sscanf(line, "%63s %95s", id, addr) == 2)
                sscanf(addr, "%63[^:]:%d", rhost, &rport);
            break;
        }
    }
    eg_reply_free(r);
    cr_assert_gt(rport, 0, "no replica found for master %d", o->port);
    pthread_t t;
    pthread_create(&t, NULL, load_run, &l);
    sleep_ms(300);
    eg_store_t *rn = open_node(rhost, rport);
    const char *fo[] = {"CLUSTER", "FAILOVER"};
    eg_reply_free(must(rn, 2, fo));
    bool promoted = false;
    for (int i = 0; i < 100 && !promoted; i++) {
        sleep_ms(100);
        const char *role[] = {"ROLE"};
        r = must(rn, 1, role);
        promoted = strcmp(r->element[0]->str, "master") == 0;
        eg_reply_free(r);
    }
    eg_store_close(rn);
    sleep_ms(500);
    atomic_store(&l.stop, true);
    pthread_join(t, NULL);
    cr_expect(promoted, "the replica %d did not become master", rport);
    check_load(&l);
}

Test(store_cluster, z_a_master_killed_under_writes_loses_nothing_acknowledged)
{
    char tag[48];
    snprintf(tag, sizeof tag, "kill-%d", (int)getpid());
    char probe[96];
    snprintf(probe, sizeof probe, "{%s}", tag);
    int slot = keyslot(probe);
    master_t m[64];
    size_t nm = masters(m, 64);
    const master_t *o = owner(m, nm, slot);
    eg_store_t *n = open_node(o->host, o->port);
    const char *info[] = {"INFO", "server"};
    eg_reply_t *r = must(n, 2, info);
    pid_t pid = (pid_t)atol(strstr(r->str, "process_id:") + 11);
    eg_reply_free(r);
    eg_store_close(n);

    eg_store_t *s = open_cluster_with("?min_replicas=1&wait_ms=1000");
    enum { MAX = 6000 };
    static char acked[MAX];
    int i = 0, after = 0;
    int64_t t0 = eg_mono_ms(), last_ok = t0, worst = 0;
    const char *lib = getenv("ENGAGE_TEST_STACK_REDIS"), *dir = getenv("ENGAGE_TEST_REDIS_DIR");
    cr_assert(lib && dir, "ENGAGE_TEST_STACK_REDIS and ENGAGE_TEST_REDIS_DIR must be set");
    bool killed = false, restarted = false;
    int64_t killed_at = 0;
    while (i < MAX && eg_mono_ms() - t0 < 40000 && after < 300) {
        if (!killed && i == 200) {
            kill(pid, SIGKILL);
            killed = true;
            killed_at = eg_mono_ms();
            cr_log_info("killed master %d (pid %d) serving slot %d", o->port, (int)pid, slot);
        }
        if (killed && !restarted && eg_mono_ms() - killed_at > 3000) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd,
                     "bash -c 'source \"$0\"; redis_node_start \"$1\" "
                     "\"$(redis_name_of_port \"$1\" %d)\"' '%s' '%s' >/dev/null 2>&1",
                     o->port, lib, dir);
            cr_expect_eq(system(cmd), 0, "could not start the killed node again");
            restarted = true;
        }
        char k[96], v[16];
        snprintf(k, sizeof k, "t:{%s}:k%d", tag, i);
        snprintf(v, sizeof v, "%d", i);
        const char *set[] = {"SET", k, v};
        eg_reply_t *rr = NULL;
        eg_status_t st = eg_store_command(s, 3, set, NULL, &rr);
        eg_reply_free(rr);
        int64_t now = eg_mono_ms();
        if (st == EG_OK) {
            acked[i++] = 1;
            worst = now - last_ok > worst ? now - last_ok : worst;
            last_ok = now;
            after += killed;
        } else {
            cr_expect_eq(st, EG_EUNAVAIL, "a failover is an outage, not %s (%s)", eg_status_str(st),
                         eg_store_error(s));
            sleep_ms(50);
        }
    }
    cr_expect_geq(after, 300, "only %d writes after the kill", after);
    cr_expect_lt(worst, 10000, "writes stopped for %lld ms", (long long)worst);
    int lost = 0;
    for (int k = 0; k < i; k++) {
        char key[96];
        snprintf(key, sizeof key, "t:{%s}:k%d", tag, k);
        const char *get[] = {"GET", key};
        eg_reply_t *g = NULL;
        cr_assert_eq(eg_store_command(s, 2, get, NULL, &g), EG_OK, "%s", eg_store_error(s));
        if (acked[k] && (g->type != EG_REPLY_STRING || atoi(g->str) != k))
            lost++;
        eg_reply_free(g);
    }
    cr_expect_eq(lost, 0, "%d of %d acknowledged writes lost", lost, i);
    printf("store_cluster: master killed: unavailable_ms=%lld acked=%d lost=%d\n", (long long)worst,
           i, lost);
    eg_store_close(s);
}
