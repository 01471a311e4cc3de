-- 0018: second factors, as in the SQLite backend's 0017. user_totp holds a
-- user's TOTP (RFC 6238) secret, sealed under the key-encryption key; it is
-- a factor once confirmed_at is set. last_step is the last time step
-- accepted, so a code is never accepted twice. recovery_codes holds SHA-256
-- digests of the one-time recovery codes, each spent once (used_at).
-- sessions.pending marks a login whose password was right but whose second
-- factor is still due: not a session yet.
CREATE TABLE user_totp (
    user_id      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    sealed       BYTEA  NOT NULL,
    confirmed_at BIGINT NOT NULL,
    last_step    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id   TEXT COLLATE "C" NOT NULL,
    code_hash BYTEA  NOT NULL,
    used_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

ALTER TABLE sessions ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
