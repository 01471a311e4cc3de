-- 0004: named leases, so that of several processes sharing the database file
-- (the server, the CLI, a second server started by mistake) one at a time does
-- a coordinated job (scheduled key rotation). A lease is held by holder until
-- expires_at (INTEGER Unix nanoseconds UTC, from the callers' clocks); after
-- that anyone may take it over. Same table as PostgreSQL's 0003.

CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
