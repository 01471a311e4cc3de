-- 0005: browser sessions and OAuth 2.0 authorization codes, as in the SQLite
-- backend's 0003.
--
-- As in 0001 and 0002: times are BIGINT Unix nanoseconds UTC with 0 for "not
-- set", and key columns use the "C" collation (byte order), so that their
-- indexes do not depend on the database's locale. Neither table stores a
-- secret: id is the hex SHA-256 of the cookie value or of the code.

-- One row per browser login. expires_at is the absolute timeout; the idle
-- timeout is applied by Keygate against last_seen. No foreign key on user_id:
-- a session of a deleted user is refused when it is next used.
CREATE TABLE sessions (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL,
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Logging a user out everywhere.
CREATE INDEX sessions_user ON sessions (user_id);
-- Pruning.
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Authorization codes: single use (used_at), bound to the client, the
-- redirect URI, the PKCE challenge and the nonce. Redeeming one records the
-- refresh-token family and the access-token jti issued from it, so that a
-- second use can revoke them. No foreign keys, as for refresh_tokens:
-- client_id may name a client from the configuration file.
CREATE TABLE auth_codes (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    client_id         TEXT   NOT NULL,
    redirect_uri      TEXT   NOT NULL,
    user_id           TEXT   NOT NULL,
    scope             TEXT   NOT NULL,
    nonce             TEXT   NOT NULL,
    code_challenge    TEXT   NOT NULL,
    auth_time         BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    used_at           BIGINT NOT NULL DEFAULT 0,
    family_id         TEXT   NOT NULL DEFAULT '',
    access_jti        TEXT   NOT NULL DEFAULT '',
    access_expires_at BIGINT NOT NULL DEFAULT 0
);

-- Pruning.
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
