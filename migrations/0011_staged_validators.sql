-- A sync run's download is staged like a URL import's, so that a retry on any worker reads it instead of
-- downloading again; the validators of the answer it came with (ETag, Last-Modified) are kept beside it,
-- for the sync to record when the retry completes.
ALTER TABLE geoimport.imports ADD COLUMN staged_etag text, ADD COLUMN staged_last_modified text;
