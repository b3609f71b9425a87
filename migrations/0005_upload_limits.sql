-- What a user may leave waiting in the queue (review #8). An upload stays on disk from the moment it is
-- accepted until its import ends, and max_concurrent_imports only bounds the imports that run, so until
-- now nothing bounded what one user could queue, nor the disk it took.

-- The bytes of staged files a user's unfinished imports may hold together, and how many unfinished
-- imports (uploads, URLs and connectors alike) a user may have. Beyond either, new imports are refused
-- with 429 until some finish. Users created before this migration get the defaults it names; new users
-- get the server's (GEOIMPORT_MAX_STAGED_BYTES, GEOIMPORT_MAX_PENDING_IMPORTS).
ALTER TABLE geoimport.users ADD COLUMN max_staged_bytes bigint NOT NULL DEFAULT 4294967296
    CHECK (max_staged_bytes >= 0);
ALTER TABLE geoimport.users ADD COLUMN max_pending_imports integer NOT NULL DEFAULT 100
    CHECK (max_pending_imports >= 0);

-- The size of an upload's staged file, recorded as it is queued (0 for URL and connector imports, whose
-- bytes a worker fetches later). The limit sums this column over the user's unfinished imports rather
-- than looking at the disk: one indexed query, and the same answer on every API node.
ALTER TABLE geoimport.imports ADD COLUMN staged_bytes bigint NOT NULL DEFAULT 0 CHECK (staged_bytes >= 0);

-- What the limits read at every new import: the user's unfinished imports.
CREATE INDEX imports_user_unfinished_idx ON geoimport.imports (user_id)
    WHERE state NOT IN ('complete', 'failure');
