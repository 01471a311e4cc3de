#!/usr/bin/env bash
# usage: get-token.sh KEYGATE_URL CLIENT_ID CLIENT_SECRET [SCOPE] [RESOURCE_URL]
# Gets an access token with the client_credentials grant (curl, HTTP Basic client
# authentication) and prints it; with RESOURCE_URL, also calls it with the token.
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2p "$0" >&2; exit 2; fi
keygate=$1 client=$2 secret=$3 scope=${4:-} resource=${5:-}
resp=$(curl -sS -u "$client:$secret" --data-urlencode grant_type=client_credentials \
  ${scope:+--data-urlencode "scope=$scope"} "$keygate/token")
token=$(printf '%s' "$resp" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
if [ -z "$token" ]; then echo "no token: $resp" >&2; exit 1; fi
echo "$token"
if [ -n "$resource" ]; then
  curl -sS -w '\n%{http_code}\n' -H "Authorization: Bearer $token" "$resource"
fi
