-- Database connectors: imports (and synchronizations) that read a table or a query from a MySQL/MariaDB or
-- PostgreSQL server.

-- What to read, in clear: provider, table or sql_query, import_as, schema, encoding, columns. Never the
-- connection.
ALTER TABLE geoimport.imports ADD COLUMN connector jsonb;
-- Where to connect (server, port, database, username, password, sslmode), sealed with the server's key
-- (XChaCha20-Poly1305; see src/connector/seal.rs). Nobody reading this table, a dump or a backup sees a
-- password in clear.
ALTER TABLE geoimport.imports ADD COLUMN connector_secret bytea;

-- A finished import keeps no way into its source: the sealed connection is forgotten as the row becomes
-- complete or failure, on every path that finishes a job (worker, reaper, API), present or future.
CREATE FUNCTION geoimport.forget_connector_secret() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.connector_secret := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER imports_forget_connector_secret
    BEFORE INSERT OR UPDATE ON geoimport.imports
    FOR EACH ROW
    WHEN (NEW.state IN ('complete', 'failure') AND NEW.connector_secret IS NOT NULL)
    EXECUTE FUNCTION geoimport.forget_connector_secret();

-- A connector synchronization keeps its own sealed copy for as long as it exists (each run's import gets
-- a copy, forgotten when that run ends). Its url is '' (it has none).
ALTER TABLE geoimport.synchronizations ADD COLUMN connector jsonb;
ALTER TABLE geoimport.synchronizations ADD COLUMN connector_secret bytea;

-- The most rows one connector import reads (the reference's max_rows per connection); the table stops
-- there and the import says so in its warnings.
ALTER TABLE geoimport.users ADD COLUMN max_rows_per_connection bigint NOT NULL DEFAULT 1000000
    CHECK (max_rows_per_connection > 0);
