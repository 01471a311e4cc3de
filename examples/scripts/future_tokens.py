#!/usr/bin/env python3
# usage: future_tokens.py KEYGATE_URL RESOURCE_URL CLIENT_ID PRIVATE_KEY_PEM [INTERVAL_S=5] [COUNT=8]
# The script-login "future tokens" client (PyJWT + requests), adapted only to send its
# request token to Keygate's /login and its use token to the resource server.
import sys
from time import sleep

import jwt
import requests

if len(sys.argv) < 5:
    print(open(__file__).read().splitlines()[1], file=sys.stderr)
    sys.exit(2)
keygate, resource, client, keyfile = sys.argv[1:5]
interval = float(sys.argv[5]) if len(sys.argv) > 5 else 5
count = int(sys.argv[6]) if len(sys.argv) > 6 else 8

client_private_key = open(keyfile).read()
reqtoken = jwt.encode({"iss": client}, client_private_key, algorithm="RS256")
resp = requests.post(keygate + "/login", data=reqtoken, headers={"Content-Type": "application/jwt"})
if resp.status_code != 200:
    print(resp.status_code, resp.text)
    sys.exit(1)
resptoken = resp.text
claims = jwt.decode(resptoken, options={"verify_signature": False})
print({"nbf": claims["nbf"], "exp": claims["exp"]})

for _ in range(count):
    resp = requests.post(resource, data=resptoken)
    print(resp.status_code, resp.text)
    sys.stdout.flush()
    sleep(interval)
