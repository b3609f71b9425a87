-- Webhooks: an import (or every run of a sync) may name a callback_url, which receives the final status
-- in a signed POST. A delivery is queued by a trigger in the transaction that ends the import, whichever
-- code path ends it (publish, failure, cancel, a lapsed lease), so none is missed; workers deliver them
-- and retry with backoff.
ALTER TABLE geoimport.imports ADD COLUMN callback_url text;
ALTER TABLE geoimport.synchronizations ADD COLUMN callback_url text;
-- The key a user's deliveries are signed with (HMAC-SHA256), made the first time it is asked for.
ALTER TABLE geoimport.users ADD COLUMN webhook_secret text;

CREATE TABLE geoimport.webhook_deliveries (
    import_id    uuid PRIMARY KEY REFERENCES geoimport.imports (id) ON DELETE CASCADE,
    url          text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    gave_up_at   timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due_idx ON geoimport.webhook_deliveries (next_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;

CREATE FUNCTION geoimport.queue_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO geoimport.webhook_deliveries (import_id, url) VALUES (NEW.id, NEW.callback_url)
        ON CONFLICT (import_id) DO NOTHING;
    RETURN NEW;
END
$$;

CREATE TRIGGER imports_webhook_on_end AFTER UPDATE OF state ON geoimport.imports FOR EACH ROW
    WHEN (NEW.callback_url IS NOT NULL AND NEW.state IN ('complete', 'failure') AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION geoimport.queue_webhook();
CREATE TRIGGER imports_webhook_on_insert AFTER INSERT ON geoimport.imports FOR EACH ROW
    WHEN (NEW.callback_url IS NOT NULL AND NEW.state IN ('complete', 'failure'))
    EXECUTE FUNCTION geoimport.queue_webhook();
