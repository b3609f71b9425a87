-- The rejections report (GET /api/v1/imports/<id>/rejections): what the loaders could not keep as the source
-- had it. Rows are written in the transaction that completes the import and go with it.
CREATE TABLE geoimport.import_rejections (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    import_id   uuid NOT NULL REFERENCES geoimport.imports (id) ON DELETE CASCADE,
    table_name  text NOT NULL,
    -- the source row or feature, counting from 1
    row_number  bigint NOT NULL,
    column_name text NOT NULL,
    -- the original value as text, cut to 200 characters
    value       text,
    reason      text NOT NULL
);
CREATE INDEX import_rejections_import_idx ON geoimport.import_rejections (import_id, id);

-- Every rejection counted, including those past the details kept per table.
ALTER TABLE geoimport.imports ADD COLUMN rejections bigint;
