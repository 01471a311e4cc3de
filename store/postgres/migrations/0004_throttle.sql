-- 0004: login throttling shared by every replica: one token bucket per key
-- ("user:alice", "ip:192.0.2.1"), so N replicas behind a load balancer do not
-- give a password guesser N times the budget. tokens may go below zero (failed
-- attempts made while already limited push the refill further out);
-- updated_at is Unix nanoseconds UTC from the callers' clocks.

CREATE TABLE login_throttle (
    key        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL
);
