-- 0014: one active and one next key per signing algorithm (RS256, and
-- optionally ES256 and EdDSA beside it), each rotating on its own; a second
-- 'active' or 'next' row of the same algorithm is still store.ErrConflict
-- (SQLSTATE 23505).

DROP INDEX signing_keys_one_active;
DROP INDEX signing_keys_one_next;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state, algorithm) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_next   ON signing_keys (state, algorithm) WHERE state = 'next';
