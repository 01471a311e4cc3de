#!/bin/sh
# Load test of /token on a fresh SQLite database: client_credentials, then
# refresh-token rotation (every worker rotating its own chain), at the same
# concurrency in the same run. See docs/BENCHMARKS.md, "Refresh under
# contention (SQLite)".
#
#   internal/benchmarks/load.sh                 # builds ./keygate from this tree
#   KEYGATE_BIN=/tmp/old-keygate internal/benchmarks/load.sh   # an A/B binary
#   C=32 D=10s PORT=18090 internal/benchmarks/load.sh      # default: a free port
#   ROUNDS=5 internal/benchmarks/load.sh        # the default: the phases alternate
#                                               # five times, D/5 each
#   PHASES=password C=64 D=15s KEYGATE_MEMORY_LIMIT=64MiB internal/benchmarks/load.sh
#                                               # a password flood; prints peak RSS
set -eu
cd "$(dirname "$0")/../.."
# The server runs on the built-in defaults: drop any KEYGATE_ setting of the
# calling shell (an issuer, a PostgreSQL driver, a KEK file of another
# deployment) but this script's own inputs, KEYGATE_BIN and KEYGATE_MEMORY_LIMIT.
for v in $(env | sed -n 's/^\(KEYGATE_[A-Z0-9_]*\)=.*/\1/p'); do
	case $v in KEYGATE_BIN | KEYGATE_MEMORY_LIMIT) ;; *) unset "$v" ;; esac
done
C=${C:-32}
D=${D:-10s}
ROUNDS=${ROUNDS:-5}
PHASES=${PHASES:-client_credentials,refresh_token}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/keygate-load.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

bin=${KEYGATE_BIN:-}
if [ -z "$bin" ]; then
	bin=$tmp/keygate
	go build -o "$bin" .
fi
go build -o "$tmp/load" ./internal/benchmarks/load
PORT=${PORT:-$("$tmp/load" -free-port)}

export KEYGATE_DATABASE_URL="$tmp/keygate.db" KEYGATE_LISTEN="127.0.0.1:$PORT" KEYGATE_LOG_LEVEL=error
# Built-in defaults (the dev KEK under $tmp/data) but for the login throttle,
# raised so that every password-grant request is verified.
printf 'login: {user_burst: 100000, user_every: 1ms, ip_burst: 100000, ip_every: 1ms}\n' >"$tmp/keygate.yaml"
export KEYGATE_CONFIG="$tmp/keygate.yaml"
(cd "$tmp" && "$bin" init >/dev/null 2>&1)
secret=$(cd "$tmp" && "$bin" clients add bench --grant client_credentials,password,refresh_token --scope read 2>/dev/null |
	sed -n 's/^client_secret: *//p')
password='load test password 1234'
(cd "$tmp" && printf '%s\n' "$password" | "$bin" users add bench >/dev/null 2>&1)

(cd "$tmp" && exec "$bin" serve >"$tmp/server.log" 2>&1) &
pid=$!
i=0
until kill -0 "$pid" 2>/dev/null && curl -s -o /dev/null "http://127.0.0.1:$PORT/jwks" 2>/dev/null; do # up: it answers at all
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "load.sh: the server did not start:" >&2
		cat "$tmp/server.log" >&2
		exit 1
	fi
	sleep 0.1
done

"$tmp/load" -url "http://127.0.0.1:$PORT" -c "$C" -d "$D" -rounds "$ROUNDS" -pid "$pid" -phases "$PHASES" \
	-client bench -secret "$secret" -user bench -password "$password"
