-- 0014: a counter that every write to clients bumps, as in the SQLite
-- backend's 0013, so servers can cache client records and notice a change
-- made by a replica or the CLI by reading one row. A statement trigger bumps
-- it, so every writer invalidates.
CREATE TABLE clients_version (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO clients_version (id, version) VALUES (1, 0);
CREATE FUNCTION bump_clients_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE clients_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER clients_version_bump AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_clients_version();
