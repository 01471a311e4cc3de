-- 0009: OAuth 2.0 device authorizations (RFC 8628).
--
-- As in 0003: times are INTEGER Unix nanoseconds UTC with 0 for "not set",
-- and no secret is stored: id is the hex SHA-256 of the device code and
-- user_code the hex SHA-256 of the normalized user code, unique so that a
-- code the user types names one authorization. status is pending, approved
-- or denied; poll_interval (nanoseconds) grows by slow_down; last_poll_at
-- paces polling; used_at makes a code single use.
CREATE TABLE device_codes (
    id            TEXT    NOT NULL PRIMARY KEY,
    user_code     TEXT    NOT NULL UNIQUE,
    client_id     TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    user_id       TEXT    NOT NULL DEFAULT '',
    auth_time     INTEGER NOT NULL DEFAULT 0,
    poll_interval INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    last_poll_at  INTEGER NOT NULL DEFAULT 0,
    decided_at    INTEGER NOT NULL DEFAULT 0,
    used_at       INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Pruning.
CREATE INDEX device_codes_expires ON device_codes (expires_at);
