-- 0009: consent for third-party clients.
--
-- A third-party client (third_party = 1) shows its users a consent page
-- before its first code. consents remembers, per user and client, the scopes
-- the user allowed (a JSON array of strings), so that a later request for
-- scopes already granted skips the page. No foreign keys, as for
-- refresh_tokens: client_id may name a client from the configuration file;
-- DeleteClient and DeleteUser delete the rows themselves.
ALTER TABLE clients ADD COLUMN third_party INTEGER NOT NULL DEFAULT 0 CHECK (third_party IN (0, 1));

CREATE TABLE consents (
    user_id    TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    scopes     TEXT    NOT NULL, -- JSON array of strings
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

-- Deleting a client's consents.
CREATE INDEX consents_client ON consents (client_id);
