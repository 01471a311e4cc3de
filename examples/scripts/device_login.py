#!/usr/bin/env python3
# usage: device_login.py ISSUER_URL CLIENT_ID [SCOPE]
# Logs in a command-line tool with the device authorization grant (RFC 8628):
# asks Keygate for a device code, prints where to go and the code to enter,
# polls the token endpoint until the user allows (or denies) it, then verifies
# the access token against ISSUER_URL/jwks and prints its claims as JSON.
# CLIENT_ID is a public client allowed the grant, e.g.
#   keygate clients add cli --public --grant urn:ietf:params:oauth:grant-type:device_code --scope openid,profile
import json
import sys
import time

import jwt
import requests

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

if len(sys.argv) < 3:
    print(open(__file__).read().splitlines()[1], file=sys.stderr)
    sys.exit(2)
issuer, client_id = sys.argv[1].rstrip("/"), sys.argv[2]
scope = sys.argv[3] if len(sys.argv) > 3 else "openid profile"

meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
r = requests.post(meta["device_authorization_endpoint"], data={"client_id": client_id, "scope": scope}, timeout=10)
if r.status_code != 200:
    print(f"device authorization failed: {r.status_code} {r.text}", file=sys.stderr)
    sys.exit(1)
auth = r.json()
print(f"To sign in, open {auth['verification_uri']} and enter the code {auth['user_code']}", flush=True)
print(f"(or open {auth['verification_uri_complete']})", flush=True)

interval = auth.get("interval", 5)
deadline = time.monotonic() + auth["expires_in"]
while True:
    time.sleep(interval)
    if time.monotonic() > deadline:
        print("the code expired; run again", file=sys.stderr)
        sys.exit(1)
    r = requests.post(meta["token_endpoint"], timeout=10,
                      data={"grant_type": DEVICE_GRANT, "device_code": auth["device_code"], "client_id": client_id})
    body = r.json()
    if r.status_code == 200:
        break
    error = body.get("error")
    if error == "authorization_pending":
        continue
    if error == "slow_down":  # RFC 8628 §3.5: five more seconds from now on
        interval += 5
        continue
    print(f"login failed: {error}: {body.get('error_description', '')}", file=sys.stderr)
    sys.exit(1)

token = body["access_token"]
key = jwt.PyJWKClient(issuer + "/jwks").get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["RS256"], issuer=issuer, options={"verify_aud": False})
print(f"logged in as {claims.get('preferred_username', claims['sub'])}"
      f" (refresh token: {'yes' if body.get('refresh_token') else 'no'}, id token: {'yes' if body.get('id_token') else 'no'})",
      flush=True)
print(json.dumps(claims, sort_keys=True))
