-- 0010: consent for third-party clients, as in the SQLite backend's 0009.
--
-- A third-party client (third_party) shows its users a consent page before
-- its first code. consents remembers, per user and client, the scopes the
-- user allowed (a JSON array of strings), so that a later request for scopes
-- already granted skips the page. No foreign keys, as for refresh_tokens:
-- client_id may name a client from the configuration file; DeleteClient and
-- DeleteUser delete the rows themselves. Key columns use the "C" collation
-- (byte order), as in 0002.
ALTER TABLE clients ADD COLUMN third_party BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE consents (
    user_id    TEXT COLLATE "C" NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    scopes     TEXT   NOT NULL, -- JSON array of strings
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Deleting a client's consents.
CREATE INDEX consents_client ON consents (client_id);
