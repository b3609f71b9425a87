-- Idempotency-Key on POST /api/v1/imports: a retried request gets the import its first try created.
-- A key belongs to one user; the fingerprint (a hash of the parameters and the file) tells a retry from
-- another request that reuses the key. Keys expire after a day (the janitor deletes them).
CREATE TABLE geoimport.idempotency_keys (
    user_id     uuid NOT NULL REFERENCES geoimport.users (id) ON DELETE CASCADE,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    import_id   uuid NOT NULL REFERENCES geoimport.imports (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON geoimport.idempotency_keys (created_at);
