-- Operators' tools (geoimport user ..., /api/v1/admin/users): disabled accounts, and keys beside the
-- master key, each with a label and an optional expiry, so that a key can be rolled without downtime.
ALTER TABLE geoimport.users ADD COLUMN disabled_at timestamptz;

CREATE TABLE geoimport.api_keys (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES geoimport.users (id) ON DELETE CASCADE,
    label       text NOT NULL,
    -- SHA-256 of the key, as for master keys; the key itself is shown once and never stored
    key_hash    bytea NOT NULL UNIQUE,
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, label)
);
