-- 0010: the web origins (scheme://host[:port]) whose scripts may read a
-- client's answers from /token, /revoke and /userinfo (CORS), as a JSON array
-- of strings, as in the SQLite backend's 0009. An empty array means: the
-- origins of its redirect URIs.
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
