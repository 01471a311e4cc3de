#!/usr/bin/env python3
# usage: dpop.py ISSUER_URL CLIENT_ID USERNAME PASSWORD RESOURCE_URL
# Gets a DPoP-bound access token (RFC 9449) from Keygate with the password
# grant of a public client, then calls RESOURCE_URL and Keygate's /userinfo
# with it, each request with a fresh proof signed by this script's own P-256
# key (PyJWT + cryptography). Then it shows what a thief gets: the same proof
# replayed, and the token sent as a plain Bearer token, are both refused.
# Server nonces (DPoP-Nonce, use_dpop_nonce) are answered by one retry.
# ISSUER_URL is where this script reaches Keygate; each proof's htu is the URL
# Keygate publishes (its configured issuer, from discovery), which differs
# when Keygate is reached through a proxy, a tunnel or an internal address.
import base64
import hashlib
import json
import secrets
import sys
import time

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec

if len(sys.argv) != 6:
    print(open(__file__).read().splitlines()[1], file=sys.stderr)
    sys.exit(2)
issuer, client_id, username, password, resource = sys.argv[1:]

key = ec.generate_private_key(ec.SECP256R1())  # the client's DPoP key: it never leaves this process
public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
nonce = None  # the last DPoP-Nonce the server sent


def published(url):
    """The URL as Keygate names it: a URL under ISSUER_URL moved under the issuer discovery publishes."""
    return public_issuer + url[len(issuer):] if url.startswith(issuer + "/") else url


def proof(method, url, token=None):
    """A DPoP proof for one request: htm, htu, a unique jti, iat; ath binds it to the token."""
    claims = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": published(url), "iat": int(time.time())}
    if token:
        claims["ath"] = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    if nonce:
        claims["nonce"] = nonce
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": public_jwk})


def send(method, url, token=None, data=None):
    """Sends the request with a fresh proof; retries once with the server's nonce if it asks for one."""
    global nonce
    for _ in range(2):
        headers = {"DPoP": proof(method, url, token)}
        if token:
            headers["Authorization"] = "DPoP " + token
        r = requests.request(method, url, headers=headers, data=data, timeout=10)
        asked = r.headers.get("DPoP-Nonce")
        wants_nonce = "use_dpop_nonce" in (r.headers.get("WWW-Authenticate", "") + r.text)
        if asked:
            nonce = asked
        if not (wants_nonce and asked):
            return r, headers
    return r, headers


public_issuer = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()["issuer"]
r, _ = send("POST", issuer + "/token", data={"grant_type": "password", "client_id": client_id, "username": username,
                                           "password": password, "scope": "openid profile"})
if r.status_code != 200:
    print("token", r.status_code, r.text)
    sys.exit(1)
token = r.json()["access_token"]
print("token_type", r.json()["token_type"])

statuses = []
r, _ = send("GET", resource, token)
print("resource", r.status_code, r.text.strip())
statuses.append(r.status_code == 200)
r, used = send("GET", issuer + "/userinfo", token)
print("userinfo", r.status_code, r.text.strip())
statuses.append(r.status_code == 200)

# What a thief with a copy of the token and of one request's headers gets:
r = requests.get(issuer + "/userinfo", headers=used, timeout=10)
print("replayed proof", r.status_code, r.headers.get("WWW-Authenticate"))
statuses.append(r.status_code == 401)
r = requests.get(issuer + "/userinfo", headers={"Authorization": "Bearer " + token}, timeout=10)
print("as Bearer", r.status_code, r.headers.get("WWW-Authenticate"))
statuses.append(r.status_code == 401)
sys.exit(0 if all(statuses) else 1)  # 1: some answer was not what DPoP promises
