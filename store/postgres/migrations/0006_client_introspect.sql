-- 0006: clients that may introspect other clients' tokens (RFC 7662 §4:
-- resource servers), as in the SQLite backend's 0005. Every other client
-- learns only about its own tokens.
ALTER TABLE clients ADD COLUMN may_introspect BOOLEAN NOT NULL DEFAULT false;
