-- 0003: named leases, so that of several replicas sharing the database one at
-- a time does a coordinated job (key rotation). A lease is held by holder
-- until expires_at (Unix nanoseconds UTC, from the callers' clocks); after
-- that anyone may take it over.

CREATE TABLE leases (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
