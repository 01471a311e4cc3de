-- 0018: passkeys (WebAuthn credentials) and the challenges of WebAuthn
-- ceremonies under way.
--
-- passkeys holds each credential record: id is the credential ID
-- (base64url), public_key the COSE key, sign_count the last counter seen.
-- No foreign key, as for consents: DeleteUser deletes the rows itself.
CREATE TABLE passkeys (
    id                 TEXT    NOT NULL PRIMARY KEY,
    user_id            TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    public_key         BLOB    NOT NULL,
    attestation_format TEXT    NOT NULL,
    aaguid             BLOB,
    transports         TEXT    NOT NULL, -- JSON array of strings
    sign_count         INTEGER NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
    user_verified      INTEGER NOT NULL CHECK (user_verified IN (0, 1)),
    backup_eligible    INTEGER NOT NULL CHECK (backup_eligible IN (0, 1)),
    backup_state       INTEGER NOT NULL CHECK (backup_state IN (0, 1)),
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL
) STRICT;

CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

-- One row per ceremony begun and not yet finished: single use (deleted when
-- consumed), short-lived (pruned with sessions), capped per binding.
CREATE TABLE webauthn_challenges (
    id         TEXT    NOT NULL PRIMARY KEY, -- hex SHA-256 of the challenge
    ceremony   TEXT    NOT NULL CHECK (ceremony IN ('registration', 'login')),
    user_id    TEXT    NOT NULL,
    binding    TEXT    NOT NULL,
    data       BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX webauthn_challenges_binding ON webauthn_challenges (binding, created_at);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
