-- 0020: DPoP authorization code binding (RFC 9449 §10). /authorize may carry
-- dpop_jkt, the thumbprint of the client's DPoP key; the code remembers it
-- and the exchange must then bring a proof signed with that key. '' when the
-- request had none.
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';
