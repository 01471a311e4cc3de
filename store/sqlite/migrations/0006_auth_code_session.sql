-- 0006: the browser session an authorization code was issued in, so that a
-- session's outstanding codes can be capped (CreateAuthCode deletes the
-- oldest beyond the cap, and the session's expired ones, as it inserts).
-- Codes issued before this migration have no session ('') and expire within
-- a minute.
ALTER TABLE auth_codes ADD COLUMN session_id TEXT NOT NULL DEFAULT '';

CREATE INDEX auth_codes_session ON auth_codes (session_id, created_at);
