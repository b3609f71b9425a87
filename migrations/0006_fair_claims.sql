-- Claiming is fair across users (src/queue/storage.rs, claim_next): it counts each user's running jobs and
-- looks at when each user's latest job started. These two indexes keep that look small however long the
-- history grows: the running jobs are few, and only the last hour's starts are read.
CREATE INDEX imports_running_idx ON geoimport.imports (user_id)
    WHERE state IN ('uploading', 'unpacking', 'guessing', 'importing');
CREATE INDEX imports_started_idx ON geoimport.imports (started_at);
