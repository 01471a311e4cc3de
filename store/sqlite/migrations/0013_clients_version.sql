-- 0013: a counter that every write to clients bumps, so a server can cache
-- client records and notice a change made by another process on the same
-- file (the CLI) by reading one row. Triggers bump it, so every writer,
-- old or new code, invalidates.
CREATE TABLE clients_version (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO clients_version (id, version) VALUES (1, 0);
CREATE TRIGGER clients_version_insert AFTER INSERT ON clients
BEGIN UPDATE clients_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER clients_version_update AFTER UPDATE ON clients
BEGIN UPDATE clients_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER clients_version_delete AFTER DELETE ON clients
BEGIN UPDATE clients_version SET version = version + 1 WHERE id = 1; END;
