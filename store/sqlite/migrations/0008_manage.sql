-- 0008: managing clients and users without deleting them.
--
-- A rotated client secret stays valid for a grace period: previous_secret_hash
-- is the SHA-256 of the secret the rotation replaced (NULL for none) and
-- previous_secret_expires_at when it stops working (Unix nanoseconds, 0 for
-- none). disabled_at is when an operator disabled a user (0 while enabled); a
-- disabled user cannot log in.
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB NULL;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN disabled_at INTEGER NOT NULL DEFAULT 0;
