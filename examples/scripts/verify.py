#!/usr/bin/env python3
# usage: verify.py ISSUER_URL TOKEN [AUDIENCE]
# Verifies a Keygate access token with PyJWT's PyJWKClient (fetches ISSUER_URL/jwks,
# picks the key by kid) and prints its claims; exits 1 with the reason if invalid.
# RS256, ES256 and EdDSA are accepted; each only with a key of its type.
import json
import sys

import jwt

if len(sys.argv) < 3:
    print(open(__file__).read().splitlines()[1], file=sys.stderr)
    sys.exit(2)
issuer, token = sys.argv[1], sys.argv[2]
audience = sys.argv[3] if len(sys.argv) > 3 else None
try:
    if jwt.get_unverified_header(token).get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
        raise jwt.InvalidTokenError("not an access token (typ)")
    key = jwt.PyJWKClient(issuer + "/jwks").get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["RS256", "ES256", "EdDSA"], issuer=issuer, audience=audience,
                        options={"verify_aud": audience is not None, "require": ["exp", "iat", "iss", "sub"]})
except Exception as err:  # PyJWT's messages say what failed
    print(f"invalid: {err}", file=sys.stderr)
    sys.exit(1)
print(json.dumps(claims, sort_keys=True))
