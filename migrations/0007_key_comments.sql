-- Corrects what 0001 says of API keys (a comment there cannot change once applied): keys are 160 random
-- bits, shown as 40 hex characters (the shape CARTO's keys have), and only their SHA-256 is stored.
COMMENT ON COLUMN geoimport.users.api_key_hash IS
    'SHA-256 of the API key; keys are 160 random bits (40 hex characters), never stored';
