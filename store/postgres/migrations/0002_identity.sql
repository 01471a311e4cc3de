-- 0002: OAuth clients, users, refresh-token families, the access-token deny
-- list and the client-assertion replay cache.
--
-- As in 0001: times are BIGINT Unix nanoseconds UTC with 0 for "not set", and
-- ordered text columns use the "C" collation (byte order). Durations are
-- BIGINT nanoseconds (Go's time.Duration). String lists are JSON arrays kept
-- in TEXT, exactly as the SQLite backend keeps them: JSONB would normalise the
-- text and refuses the escape \u0000, which encoding/json emits for a NUL.

CREATE TABLE clients (
    id                   TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name                 TEXT    NOT NULL,
    secret_hash          BYTEA   NULL,     -- SHA-256 of the secret; NULL for none
    jwks                 BYTEA   NULL,     -- JWK Set JSON, bytes as given; NULL for none
    jwks_uri             TEXT    NOT NULL,
    grant_types          TEXT    NOT NULL, -- JSON array of strings
    scopes               TEXT    NOT NULL, -- JSON array of strings
    audience             TEXT    NOT NULL, -- JSON array of strings
    redirect_uris        TEXT    NOT NULL, -- JSON array of strings
    is_public            BOOLEAN NOT NULL,
    access_ttl           BIGINT  NOT NULL,
    not_before_delay     BIGINT  NOT NULL,
    allow_bare_assertion BOOLEAN NOT NULL,
    created_at           BIGINT  NOT NULL
);

-- username_lower and email_lower are the lowercased username and email,
-- computed by Keygate (Go's strings.ToLower) rather than by SQL lower(), whose
-- answer depends on the database's collation and locale: only folding in Go
-- gives every backend the same notion of "the same name". Their unique indexes
-- make the uniqueness rules hold against concurrent writers. An unset email is
-- NULL in both columns, and NULLs never collide, so any number of users may
-- have none.
CREATE TABLE users (
    id             TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    username       TEXT    NOT NULL,
    username_lower TEXT COLLATE "C" NOT NULL,
    email          TEXT    NULL,
    email_lower    TEXT COLLATE "C" NULL,
    name           TEXT    NOT NULL,
    password_hash  TEXT    NOT NULL,
    admin          BOOLEAN NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

CREATE UNIQUE INDEX users_username_lower ON users (username_lower);
CREATE UNIQUE INDEX users_email_lower ON users (email_lower);

-- One row per link of a refresh-token family; id is the hex SHA-256 of the
-- token. No foreign keys: subject is a user ID or, for client grants, a client
-- ID, and client_id may name a client from the configuration file, which is
-- not in the clients table.
CREATE TABLE refresh_tokens (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    family_id  TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    audience   TEXT   NOT NULL, -- JSON array of strings
    auth_time  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0,
    revoked_at BIGINT NOT NULL DEFAULT 0
);

-- Family revocation, and pruning whole families by their newest expiry.
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id, expires_at);
-- Deleting a user's tokens.
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject);
-- Deleting a client's tokens.
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);

-- Revoked JWT access tokens (RFC 7009), by jti, kept until the token would
-- have expired anyway.
CREATE TABLE revoked_access_tokens (
    jti        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);

-- Client assertions (RFC 7523) seen, by client and jti, kept until the
-- assertion could no longer be accepted, so that a replay within its lifetime
-- is refused.
CREATE TABLE seen_assertions (
    client_id  TEXT COLLATE "C" NOT NULL,
    jti        TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE INDEX seen_assertions_expires ON seen_assertions (expires_at);
