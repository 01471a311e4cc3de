-- 0014: the algorithm a client's tokens are signed with: '' for RS256 (the
-- default), 'ES256' or 'EdDSA' (keys.algorithms must list it).
ALTER TABLE clients ADD COLUMN signing_alg TEXT NOT NULL DEFAULT '' CHECK (signing_alg IN ('', 'RS256', 'ES256', 'EdDSA'));
