-- URL imports keep their source; sync tables re-import it on a schedule.

ALTER TABLE geoimport.imports ADD COLUMN source_url text;

-- A synchronization: a URL imported again every `interval_secs`, replacing its table in place.
CREATE TABLE geoimport.synchronizations (
    id                      uuid PRIMARY KEY,
    user_id                 uuid NOT NULL REFERENCES geoimport.users (id) ON DELETE CASCADE,
    -- the table name asked for at creation (the reference's `name`, from `table_name`)
    name                    text,
    interval_secs           integer NOT NULL CHECK (interval_secs >= 900),
    url                     text NOT NULL,
    state                   text NOT NULL DEFAULT 'created'
        CHECK (state IN ('created', 'queued', 'syncing', 'success', 'failure')),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    -- when the next run is due, and when the last one ran
    run_at                  timestamptz NOT NULL DEFAULT now(),
    ran_at                  timestamptz,
    -- the source's validators at the last successful download, for conditional requests
    etag                    text,
    last_modified           text,
    modified_at             timestamptz,
    -- the last import this synchronization made
    log_id                  uuid,
    error_code              integer,
    error_message           text,
    retried_times           integer NOT NULL DEFAULT 0,
    type_guessing           boolean NOT NULL DEFAULT true,
    quoted_fields_guessing  boolean NOT NULL DEFAULT true,
    content_guessing        boolean NOT NULL DEFAULT false,
    create_visualization    boolean NOT NULL DEFAULT false,
    -- the tables it maintains, in layer order
    table_names             text[] NOT NULL DEFAULT '{}'
);

-- The scheduler looks for due synchronizations that are idle.
CREATE INDEX synchronizations_due_idx ON geoimport.synchronizations (run_at) WHERE state IN ('success', 'failure');
CREATE INDEX synchronizations_user_idx ON geoimport.synchronizations (user_id, created_at);
