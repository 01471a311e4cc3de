-- 0019: passkeys (WebAuthn credentials) and the challenges of WebAuthn
-- ceremonies under way, as in the SQLite backend's 0018. Key columns use
-- the "C" collation (byte order), as in 0002.
CREATE TABLE passkeys (
    id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id            TEXT COLLATE "C" NOT NULL,
    name               TEXT    NOT NULL,
    public_key         BYTEA   NOT NULL,
    attestation_format TEXT    NOT NULL,
    aaguid             BYTEA,
    transports         TEXT    NOT NULL, -- JSON array of strings
    sign_count         BIGINT  NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
    user_verified      BOOLEAN NOT NULL,
    backup_eligible    BOOLEAN NOT NULL,
    backup_state       BOOLEAN NOT NULL,
    created_at         BIGINT  NOT NULL,
    last_used_at       BIGINT  NOT NULL
);

CREATE INDEX passkeys_user ON passkeys (user_id, created_at);

CREATE TABLE webauthn_challenges (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- hex SHA-256 of the challenge
    ceremony   TEXT   NOT NULL CHECK (ceremony IN ('registration', 'login')),
    user_id    TEXT COLLATE "C" NOT NULL,
    binding    TEXT COLLATE "C" NOT NULL,
    data       BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX webauthn_challenges_binding ON webauthn_challenges (binding, created_at);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
