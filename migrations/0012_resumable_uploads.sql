-- Resumable uploads (the tus 1.0 protocol at /api/v1/uploads): a file sent in pieces over any number of
-- requests, then imported with POST /api/v1/imports {"upload_id": ...}.

-- One row per upload. upload_offset is the count of bytes durably stored: it only moves once a piece's
-- object is complete in the staging store, so an offset a client was told is never lost. expires_at moves
-- forward with every piece; past it the upload is gone (410) and the janitor deletes the row and its
-- objects. import_id is set, in the transaction that queues the import, when the upload becomes one: the
-- row then stays until it expires so that a second import of it is told which import took it (409), and
-- a retry with the same Idempotency-Key gets that import. It is no foreign key: an import's row may go
-- (with its user) while this one waits for the janitor.
CREATE TABLE geoimport.uploads (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES geoimport.users (id) ON DELETE CASCADE,
    file_name     text NOT NULL,
    upload_length bigint NOT NULL CHECK (upload_length >= 0),
    upload_offset bigint NOT NULL DEFAULT 0 CHECK (upload_offset >= 0 AND upload_offset <= upload_length),
    -- The client's Upload-Metadata header as it was sent, given back on HEAD as the protocol asks.
    metadata      text,
    import_id     uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);

-- The limits count a user's unfinished uploads (with the imports) at every new upload and import.
CREATE INDEX uploads_user_unfinished_idx ON geoimport.uploads (user_id) WHERE import_id IS NULL;
-- The janitor's question: which uploads have expired.
CREATE INDEX uploads_expires_idx ON geoimport.uploads (expires_at);

-- The pieces of an upload, one object each (`uploads/<upload>/<start>-<random>` in the staging store):
-- S3's multipart parts must be 5 MiB but the last, and a PATCH body may be any size, so each PATCH is an
-- object of its own and an import concatenates them. A piece is recorded in the transaction that moves
-- the offset, and only if the offset is still where the piece starts; an object of a PATCH that lost that
-- race (or whose process died) is in no row and goes with the upload's other objects.
CREATE TABLE geoimport.upload_segments (
    upload_id    uuid NOT NULL REFERENCES geoimport.uploads (id) ON DELETE CASCADE,
    start_offset bigint NOT NULL CHECK (start_offset >= 0),
    byte_count   bigint NOT NULL CHECK (byte_count > 0),
    object_name  text NOT NULL,
    PRIMARY KEY (upload_id, start_offset)
);
