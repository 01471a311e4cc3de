-- 0017: DPoP (RFC 9449). A client may require proof-of-possession for every
-- token it gets; a public client's refresh-token family is bound to the key
-- that began it; and the proofs seen are kept, by key thumbprint and jti,
-- until their iat window has passed, so that a replay is refused on every
-- replica (PruneExpired deletes them afterwards).
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT COLLATE "C" NOT NULL DEFAULT '';

CREATE TABLE seen_dpop_proofs (
    jkt        TEXT COLLATE "C" NOT NULL,
    jti        TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (jkt, jti)
);

CREATE INDEX seen_dpop_proofs_expires ON seen_dpop_proofs (expires_at);
