/* The numbered PostgreSQL schema migrations, applied in order by eg_pg_migrate (pg.c).
 *
 * Each entry is fixed SQL text that may hold several statements; pg.c runs one entry inside one
 * transaction and records its version in schema_migrations. Entries are append-only: once a
 * version has shipped, its SQL never changes; a change is a new version. Names are unqualified,
 * so the tables land in the first schema on the connection's search_path.
 *
 * History tables (migration 2) are partitioned by desired_time. Each has a DEFAULT partition so
 * inserts always succeed; the archiver adds day partitions ahead of time. PostgreSQL refuses to
 * create a range partition while the DEFAULT partition holds rows in that range, so day
 * partitions must be created before their day's rows arrive (or the rows moved out first):
 * services/archiver/partitions.c does both, and drops them after retention. */
#include "migrations.h"

static const eg_migration_t migrations[] = {
    {1, "config",
     "CREATE TABLE tenants (\n"
     "    id uuid PRIMARY KEY,\n"
     "    name text NOT NULL UNIQUE,\n"
     "    created_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE TABLE api_keys (\n"
     "    key_id text PRIMARY KEY,\n"
     "    tenant_id uuid NOT NULL REFERENCES tenants(id),\n"
     "    secret_hash text NOT NULL,\n"
     "    role text NOT NULL CHECK (role IN ('api', 'admin')),\n"
     "    rate_limit integer NOT NULL DEFAULT 2000,\n"
     "    created_at timestamptz NOT NULL DEFAULT now(),\n"
     "    revoked_at timestamptz\n"
     ");\n"
     "CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id);\n"
     "CREATE TABLE services (\n"
     "    tenant_id uuid NOT NULL REFERENCES tenants(id),\n"
     "    name text NOT NULL,\n"
     "    config jsonb NOT NULL,\n"
     "    version bigint NOT NULL DEFAULT 1,\n"
     "    updated_at timestamptz NOT NULL DEFAULT now(),\n"
     "    PRIMARY KEY (tenant_id, name)\n"
     ");\n"
     "CREATE TABLE audit_log (\n"
     "    id bigserial PRIMARY KEY,\n"
     "    tenant_id uuid,\n"
     "    actor text,\n"
     "    action text NOT NULL,\n"
     "    detail jsonb,\n"
     "    at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"},
    {2, "history",
     "CREATE TABLE callbacks (\n"
     "    id uuid NOT NULL,\n"
     "    tenant_id uuid NOT NULL,\n"
     "    service text NOT NULL,\n"
     "    phone text NOT NULL,\n"
     "    desired_time timestamptz NOT NULL,\n"
     "    state text NOT NULL,\n"
     "    reason text,\n"
     "    attempts integer NOT NULL DEFAULT 0,\n"
     "    version bigint NOT NULL,\n"
     "    created_at timestamptz NOT NULL,\n"
     "    updated_at timestamptz NOT NULL,\n"
     "    PRIMARY KEY (id, desired_time)\n"
     ") PARTITION BY RANGE (desired_time);\n"
     "CREATE TABLE callbacks_default PARTITION OF callbacks DEFAULT;\n"
     "CREATE INDEX callbacks_tenant_phone_idx ON callbacks (tenant_id, phone);\n"
     "CREATE TABLE callback_data (\n"
     "    callback_id uuid NOT NULL,\n"
     "    desired_time timestamptz NOT NULL,\n"
     "    user_data jsonb,\n"
     "    PRIMARY KEY (callback_id, desired_time)\n"
     ") PARTITION BY RANGE (desired_time);\n"
     "CREATE TABLE callback_data_default PARTITION OF callback_data DEFAULT;\n"
     "CREATE TABLE callback_events (\n"
     "    event_id uuid NOT NULL,\n"
     "    callback_id uuid NOT NULL,\n"
     "    desired_time timestamptz NOT NULL,\n"
     "    state text NOT NULL,\n"
     "    reason text,\n"
     "    at timestamptz NOT NULL,\n"
     "    attempt integer,\n"
     "    detail jsonb,\n"
     "    PRIMARY KEY (event_id, desired_time)\n"
     ") PARTITION BY RANGE (desired_time);\n"
     "CREATE TABLE callback_events_default PARTITION OF callback_events DEFAULT;\n"
     "CREATE INDEX callback_events_callback_at_idx ON callback_events (callback_id, at);\n"},
    /* Click-to-Call-In groups (services/scheduler/callin.c); the requests live in Redis. */
    {3, "callin",
     "CREATE TABLE call_in_groups (\n"
     "    tenant_id uuid NOT NULL REFERENCES tenants(id),\n"
     "    name text NOT NULL,\n"
     "    config jsonb NOT NULL,\n"
     "    version bigint NOT NULL DEFAULT 1,\n"
     "    updated_at timestamptz NOT NULL DEFAULT now(),\n"
     "    PRIMARY KEY (tenant_id, name)\n"
     ");\n"},
    /* History search and GDPR (services/archiver/history.c): the admin search pages a tenant's
     * callbacks newest first; gdpr_erased holds the ids of erased callbacks so that events
     * still on their way (a cancel sent by the erase itself, a JetStream redelivery or replay)
     * never bring their rows back. It holds no personal data and is purged after the events
     * stream's retention (the archiver's retention job). */
    {4, "history-search-gdpr",
     "CREATE INDEX callbacks_tenant_created_idx ON callbacks (tenant_id, created_at DESC, id "
     "DESC);\n"
     "CREATE TABLE gdpr_erased (\n"
     "    callback_id uuid PRIMARY KEY,\n"
     "    tenant_id uuid NOT NULL,\n"
     "    erased_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE INDEX gdpr_erased_at_idx ON gdpr_erased (erased_at);\n"},
    /* Smaller history (docs/benchmarks.md, pg_bytes_per_cb).
     * - callbacks: the archiver updates a row about four times in its life, never in an indexed
     *   column, so with room left on the page (fillfactor 70) the updates are HOT: no new entry
     *   in the three indexes, and the old versions are pruned in place.
     * - callbacks_tenant_created_idx ascending (it is read backwards for "newest first"): a
     *   tenant's new rows then go to the right end of its range, where a page split leaves the
     *   old page full, instead of the left end, where every split leaves pages half empty.
     * - callback_events: the from-state and the correlation id get columns of their own (a uuid
     *   is 16 bytes, against ~60 for both inside a jsonb); detail keeps what has no column (a
     *   correlation id that is not a UUID) and the rows written before. Readers take the
     *   columns first, then detail (history.c).
     * - callback_events is looked up by callback only (history export, GDPR erase, reschedule
     *   moves; a callback's few rows are sorted after): an index on callback_id alone stores a
     *   callback's rows as one key with a list of row pointers (B-tree deduplication), about a
     *   third of the (callback_id, at) index it replaces. */
    {5, "history-storage",
     "DO $$\n"
     "DECLARE p regclass;\n"
     "BEGIN\n"
     "    FOR p IN SELECT inhrelid::regclass FROM pg_inherits\n"
     "             WHERE inhparent = 'callbacks'::regclass LOOP\n"
     "        EXECUTE format('ALTER TABLE %s SET (fillfactor = 70)', p);\n"
     "    END LOOP;\n"
     "END $$;\n"
     "DROP INDEX callbacks_tenant_created_idx;\n"
     "CREATE INDEX callbacks_tenant_created_idx ON callbacks (tenant_id, created_at, id);\n"
     "ALTER TABLE callback_events ADD COLUMN from_state text, ADD COLUMN corr_id uuid;\n"
     "DROP INDEX callback_events_callback_at_idx;\n"
     "CREATE INDEX callback_events_callback_idx ON callback_events (callback_id);\n"},
};

const eg_migration_t *eg_migrations(size_t *count)
{
    *count = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}
