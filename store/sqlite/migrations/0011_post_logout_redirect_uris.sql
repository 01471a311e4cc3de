-- 0009: where a client may send the browser after RP-initiated logout
-- (OpenID Connect RP-Initiated Logout 1.0, post_logout_redirect_uri): a JSON
-- array of exact-match URIs, like redirect_uris.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
