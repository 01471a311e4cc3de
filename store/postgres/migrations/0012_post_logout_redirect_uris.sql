-- 0010: where a client may send the browser after RP-initiated logout
-- (OpenID Connect RP-Initiated Logout 1.0, post_logout_redirect_uri), as in
-- the SQLite backend's 0009: a JSON array of exact-match URIs, like
-- redirect_uris.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
