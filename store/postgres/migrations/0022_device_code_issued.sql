-- 0022: what a device code issued (the refresh-token family, the access
-- token's jti and expiry), recorded when it is redeemed, so that a second
-- redemption revokes those tokens as a reused authorization code does
-- (RFC 6749 §4.1.2). Rows redeemed before it revoke nothing.
ALTER TABLE device_codes ADD COLUMN family_id TEXT NOT NULL DEFAULT '';
ALTER TABLE device_codes ADD COLUMN access_jti TEXT NOT NULL DEFAULT '';
ALTER TABLE device_codes ADD COLUMN access_expires_at BIGINT NOT NULL DEFAULT 0;
