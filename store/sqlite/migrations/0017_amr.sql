-- 0016: how the user authenticated (RFC 8176 "amr" values such as "pwd",
-- "otp", "hwk", "mfa"), a JSON array carried from the browser session to
-- the codes, refresh tokens and device codes issued from it, as auth_time
-- is. Rows written before it read back as [] (a password login: idp treats
-- an empty list as ["pwd"]).
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
ALTER TABLE auth_codes ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
ALTER TABLE device_codes ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
