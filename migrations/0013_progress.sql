-- Where a running import stands (phase, bytes, rows), written by its worker every second; the status shows
-- it while the import runs.
ALTER TABLE geoimport.imports ADD COLUMN progress jsonb;
