-- 0010: OAuth 2.0 device authorizations (RFC 8628), as in the SQLite
-- backend's 0009.
--
-- As in 0005: times are BIGINT Unix nanoseconds UTC with 0 for "not set",
-- key columns use the "C" collation, and no secret is stored: id is the hex
-- SHA-256 of the device code and user_code the hex SHA-256 of the normalized
-- user code, unique so that a code the user types names one authorization.
-- No foreign keys, as for auth_codes: client_id may name a client from the
-- configuration file.
CREATE TABLE device_codes (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_code     TEXT COLLATE "C" NOT NULL UNIQUE,
    client_id     TEXT   NOT NULL,
    scope         TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    user_id       TEXT   NOT NULL DEFAULT '',
    auth_time     BIGINT NOT NULL DEFAULT 0,
    poll_interval BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_poll_at  BIGINT NOT NULL DEFAULT 0,
    decided_at    BIGINT NOT NULL DEFAULT 0,
    used_at       BIGINT NOT NULL DEFAULT 0
);

-- Pruning.
CREATE INDEX device_codes_expires ON device_codes (expires_at);
