-- 0006: a one-row heartbeat that the readiness probe (Store.CheckWritable)
-- updates, so that /readyz proves the database can commit a write (a full
-- disk, a read-only replica or transaction mode fail it), not only that it
-- can be read. beats counts the probes; nothing reads it. Same table as the
-- SQLite backend's 0005.

CREATE TABLE heartbeat (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    beats BIGINT  NOT NULL
);

INSERT INTO heartbeat (id, beats) VALUES (1, 0);
