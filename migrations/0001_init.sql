-- geoimport's own data lives in the schema "geoimport"; loads in progress live in "geoimport_staging";
-- each user's tables live in a schema named after the user (created with the user, not here).

CREATE SCHEMA IF NOT EXISTS geoimport;
CREATE SCHEMA IF NOT EXISTS geoimport_staging;

-- Accounts. The API key itself is never stored: only its SHA-256 (keys are 256 random bits, so a fast hash
-- is enough; a slow password hash would add nothing but latency to every request).
CREATE TABLE geoimport.users (
    id                      uuid PRIMARY KEY,
    username                text NOT NULL UNIQUE,
    api_key_hash            bytea NOT NULL UNIQUE,
    -- the PostgreSQL schema holding this user's tables
    schema_name             text NOT NULL UNIQUE,
    -- limits; NULL means unlimited
    max_file_size           bigint NOT NULL,
    max_concurrent_imports  integer NOT NULL,
    max_rows_per_table      bigint,
    table_quota             integer,
    quota_in_bytes          bigint,
    created_at              timestamptz NOT NULL DEFAULT now()
);

-- The import is the job: this row is both what GET /api/v1/imports/<id> shows and the queue entry workers
-- claim. One table means one source of truth for the state.
CREATE TABLE geoimport.imports (
    id                      uuid PRIMARY KEY,
    user_id                 uuid NOT NULL REFERENCES geoimport.users (id) ON DELETE CASCADE,
    state                   text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('enqueued', 'pending', 'uploading', 'unpacking', 'guessing', 'importing',
                         'complete', 'failure')),
    data_type               text NOT NULL DEFAULT 'file',
    -- where the bytes are: for uploads, the staged file relative to the data directory
    staged_path             text,
    display_name            text,
    original_url            text,
    -- the request's options, echoed back by the status endpoint
    type_guessing           boolean NOT NULL DEFAULT true,
    quoted_fields_guessing  boolean NOT NULL DEFAULT true,
    content_guessing        boolean NOT NULL DEFAULT false,
    create_visualization    boolean NOT NULL DEFAULT false,
    privacy                 text,
    collision_strategy      text CHECK (collision_strategy IN ('skip', 'overwrite')),
    user_defined_limits     text NOT NULL DEFAULT '{"twitter_credits_limit":0}',
    synchronization_id      uuid,
    -- results
    table_id                uuid,
    table_name              text,
    table_names             text[] NOT NULL DEFAULT '{}',
    tables_created_count    integer,
    rows_imported           bigint,
    error_code              integer,
    error_detail            text,
    warnings                jsonb,
    http_response_code      integer,
    -- queue bookkeeping
    attempts                integer NOT NULL DEFAULT 0,
    run_after               timestamptz NOT NULL DEFAULT now(),
    lease_owner             text,
    lease_expires_at        timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    started_at              timestamptz,
    finished_at             timestamptz
);

-- Workers look for pending jobs in run_after order; keep that scan small however long the history grows.
CREATE INDEX imports_pending_idx ON geoimport.imports (run_after) WHERE state = 'pending';
-- The reaper looks for running jobs whose lease lapsed.
CREATE INDEX imports_leased_idx ON geoimport.imports (lease_expires_at) WHERE lease_owner IS NOT NULL;
CREATE INDEX imports_user_created_idx ON geoimport.imports (user_id, created_at DESC);

-- Tables made by imports, so that table_id stays stable when a table is overwritten.
CREATE TABLE geoimport.tables (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES geoimport.users (id) ON DELETE CASCADE,
    name        text NOT NULL,
    import_id   uuid REFERENCES geoimport.imports (id) ON DELETE SET NULL,
    privacy     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, name)
);
