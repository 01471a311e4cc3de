-- 0017: second factors. user_totp holds a user's TOTP (RFC 6238) secret,
-- sealed under the key-encryption key; it is a factor once confirmed_at is
-- set. last_step is the last time step accepted, so a code is never
-- accepted twice. recovery_codes holds SHA-256 digests of the one-time
-- recovery codes (high-entropy random codes: no slow hash needed), each
-- spent once (used_at). sessions.pending marks a login whose password was
-- right but whose second factor is still due: not a session yet.
CREATE TABLE user_totp (
    user_id      TEXT    NOT NULL PRIMARY KEY,
    sealed       BLOB    NOT NULL,
    confirmed_at INTEGER NOT NULL,
    last_step    INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE recovery_codes (
    user_id   TEXT    NOT NULL,
    code_hash BLOB    NOT NULL,
    used_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

ALTER TABLE sessions ADD COLUMN pending INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1));
