-- 0005: clients that may introspect other clients' tokens (RFC 7662 §4:
-- resource servers). Every other client learns only about its own tokens.
ALTER TABLE clients ADD COLUMN may_introspect INTEGER NOT NULL DEFAULT 0 CHECK (may_introspect IN (0, 1));
