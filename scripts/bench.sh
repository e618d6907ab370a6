#!/usr/bin/env bash
# Load benchmarks of issues 4 and 5, each against a bare handler measured
# side by side by the same generator:
#
#   MODE=exchange (default)  a full RFC 8693 exchange (RS256 in, ES256 out,
#       CEL condition and mapping, audit on, rate limits checked) against the
#       bare verify-one-RS256-sign-one-ES256 handler; CPU per request ratio,
#       target ≤ 1.3×.
#   MODE=introspect  RFC 7662 introspection of our own ES256 access tokens
#       (client_secret_basic) against a bare handler that verifies one ES256
#       JWT; throughput ratio, target ≥ 0.80, and CPU per request ratio.
#   MODE=client-credentials  the client_credentials grant (client_secret_basic,
#       scope read) against a bare handler that signs one ES256 JWT; CPU per
#       request ratio, target ≤ 1.5×, and req/s.
#
#   scripts/bench.sh            # C=32 connections, D=20s each
#   C=16 D=10s scripts/bench.sh
#   RATE=2500 scripts/bench.sh  # latency at a fixed request rate
#   ROUNDS=3 scripts/bench.sh   # alternate the targets 3 times, median ratio
#   REDIS=redis://127.0.0.1:6379/14 scripts/bench.sh  # rate limits in Redis
#   PG=postgres://postgres@127.0.0.1:5432/test?sslmode=disable scripts/bench.sh  # on PostgreSQL
#   MODE=introspect ROUNDS=3 scripts/bench.sh
#
# Everything runs on loopback from a temporary directory (SQLite). The
# generator shares the machine's cores with the server; both targets are
# measured the same way, so the ratios are what to compare. The client
# secret of the introspect and client-credentials modes goes to a 0600 file
# in the temporary directory and is never printed.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${C:-32}
D=${D:-20s}
RATE=${RATE:-0}
ROUNDS=${ROUNDS:-1}
MODE=${MODE:-exchange}
# REDIS=redis://127.0.0.1:6379/14 keeps the rate-limit buckets in Redis
# (shared across replicas) instead of in memory.
REDIS=${REDIS:-}
# PG=postgres://postgres@127.0.0.1:5432/test?sslmode=disable runs sts on
# PostgreSQL (a fresh schema, dropped afterwards) instead of SQLite.
PG=${PG:-}
case "$MODE" in
exchange | introspect | client-credentials) ;;
*) echo "MODE=$MODE: want exchange, introspect or client-credentials" >&2; exit 2 ;;
esac
work=$(mktemp -d)
pids=()
schema=""
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	[ -n "$schema" ] && psql -q "$PG" -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/sts" ./cmd/sts
"$work/sts" bench keygen --key "$work/key.pem" --jwks "$work/jwks.json" >/dev/null
port=$(free_port)
bare_port=$(free_port)
storage="storage: {type: sqlite}"
if [ -n "$PG" ]; then
	schema="sts_bench_$$"
	psql -q "$PG" -c "CREATE SCHEMA $schema" >/dev/null
	sep='?'
	case "$PG" in *\?*) sep='&' ;; esac
	storage="storage: {type: postgres, dsn: \"$PG${sep}search_path=$schema\"}"
fi
cat >"$work/sts.yaml" <<YAML
listen: 127.0.0.1:$port
issuer: http://127.0.0.1:$port   # required with PostgreSQL; the default otherwise
data_dir: $work/data
$storage
log: {level: warn, format: json}
# Limits stay on (every request is checked) but never bind at this load.
rate_limits:
  redis_url: "$REDIS"
  per_ip: {rate: 1000000, burst: 1000000}
  per_client: {rate: 1000000, burst: 1000000}
  per_pool: {rate: 1000000, burst: 1000000}
organizations:
  - {id: acme, name: Acme, tier: enterprise}
pools:
  - id: ci
    organization: acme
    condition: 'assertion.repository_owner == "acme"'
    mapping: {subject: 'assertion.sub', attributes: {repo: 'assertion.repository'}}
    scopes: [read, write]
    max_token_lifetime: 1h
    allow_unauthenticated: true   # the bare handler authenticates no client either
    providers:
      - id: bench
        issuer: https://bench.sts.invalid
        audiences: [sts]
        jwks_file: $work/jwks.json
YAML

"$work/sts" serve --config "$work/sts.yaml" 2>"$work/serve.log" &
pids+=($!)
sts_pid=$!
for _ in $(seq 100); do
	curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "sts did not become ready:"; cat "$work/serve.log"; exit 1; }

# median prints the median of the numbers on stdin.
median() { sort -g | awk '{ r[NR] = $1 } END { printf "%.3f", (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2 }'; }
# field NAME FILE prints NAME=value from the result line of a bench run.
field() { sed -n "s/^result.* $1=\([0-9.]*\).*/\1/p" "$2"; }

if [ "$MODE" = exchange ]; then
	"$work/sts" bench bare-server --listen "127.0.0.1:$bare_port" --jwks "$work/jwks.json" >/dev/null &
	pids+=($!)
	bare_pid=$!

	common=(--key "$work/key.pem" --tokens-file "$work/tokens.txt" --claim repository_owner=acme --claim repository=acme/app -c "$C" -d "$D" --rate "$RATE")
	echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
	# The subject tokens are minted (CPU-heavy, in the generator) before the
	# first measured run only; each run has its own warm-up. With ROUNDS > 1 the
	# two targets alternate (sts, bare, sts, bare, …) so drift in the machine
	# (frequency, neighbours) falls on both, and the median ratio is reported.
	ratios=()
	for round in $(seq "$ROUNDS"); do
		[ "$ROUNDS" -gt 1 ] && echo "== round $round of $ROUNDS"
		echo "== sts exchange (POST /oauth2/token, pool ci)"
		"$work/sts" bench exchange --url "http://127.0.0.1:$port/oauth2/token" --pool ci --server-pid "$sts_pid" "${common[@]}" | tee "$work/sts.out"
		echo
		echo "== bare handler (verify one RS256 JWT, sign one ES256 JWT)"
		"$work/sts" bench exchange --url "http://127.0.0.1:$bare_port/oauth2/token" --pool ci --server-pid "$bare_pid" "${common[@]}" | tee "$work/bare.out"
		echo
		sts_cpu=$(field cpu_us_per_req "$work/sts.out")
		bare_cpu=$(field cpu_us_per_req "$work/bare.out")
		ratio=$(awk -v s="$sts_cpu" -v b="$bare_cpu" 'BEGIN { printf "%.3f", s / b }')
		ratios+=("$ratio")
		awk -v s="$sts_cpu" -v b="$bare_cpu" 'BEGIN { printf "== CPU per request: sts %.1fµs, bare %.1fµs, ratio %.2f× (target ≤ 1.3×)\n", s, b, s / b }'
	done
	if [ "$ROUNDS" -gt 1 ]; then
		printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
			m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
			printf "== median ratio over %d rounds: %.2f× (min %.2f×, max %.2f×; target ≤ 1.3×)\n", NR, m, r[1], r[NR] }'
	fi
	exit 0
fi

# introspect and client-credentials: a service-account principal and a
# client_secret_basic client (client_credentials, scope read, one audience),
# created with the CLI against the running server's data directory. The
# secret is printed once by `client create`; it goes straight to a 0600
# file and nowhere else.
principal=$("$work/sts" principal create --config "$work/sts.yaml" --org acme --kind service-account --name bench)
(
	umask 077
	"$work/sts" client create --config "$work/sts.yaml" --org acme --principal "$principal" --name bench \
		--grant-type client_credentials --scope read --audience https://api.bench.invalid |
		awk -v id="$work/client_id.txt" -v sec="$work/client_secret.txt" \
			'$1 == "client_id:" { print $2 > id } $1 == "client_secret:" { print $2 > sec }'
)
[ -s "$work/client_id.txt" ] && [ -s "$work/client_secret.txt" ] || { echo "sts client create printed no client" >&2; exit 1; }
client_id=$(cat "$work/client_id.txt")

if [ "$MODE" = introspect ]; then
	# The bare handler verifies against the server's own keys and issuer.
	curl -fsS "http://127.0.0.1:$port/.well-known/jwks.json" >"$work/sts-jwks.json"
	issuer=$(curl -fsS "http://127.0.0.1:$port/.well-known/openid-configuration" | python3 -c 'import json, sys; print(json.load(sys.stdin)["issuer"])')
	"$work/sts" bench bare-server --mode verify --listen "127.0.0.1:$bare_port" --jwks "$work/sts-jwks.json" --issuer "$issuer" >/dev/null &
	path=/oauth2/introspect
	sts_label="sts introspection (POST $path, client_secret_basic, our ES256 access tokens)"
	bare_label="bare handler (verify one ES256 JWT, any audience)"
	# Each round, the access tokens are obtained from sts before its
	# measured run (unmeasured) and read from the file for the bare run, so
	# both targets see the same tokens and none expires over many rounds.
	extra=(--tokens-file "$work/tokens.txt")
else
	"$work/sts" bench bare-server --mode sign --listen "127.0.0.1:$bare_port" >/dev/null &
	path=/oauth2/token
	sts_label="sts client_credentials (POST $path, client_secret_basic, scope read)"
	bare_label="bare handler (sign one ES256 JWT)"
	extra=()
fi
pids+=($!)
bare_pid=$!
for _ in $(seq 50); do
	curl -s -o /dev/null "http://127.0.0.1:$bare_port/" && break
	sleep 0.1
done

common=(--client-id "$client_id" --client-secret-file "$work/client_secret.txt" "${extra[@]}" -c "$C" -d "$D" --rate "$RATE")
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# As for the exchange: with ROUNDS > 1 the two targets alternate and the
# median ratios are reported.
: >"$work/rps_ratios"
: >"$work/cpu_ratios"
for round in $(seq "$ROUNDS"); do
	[ "$ROUNDS" -gt 1 ] && echo "== round $round of $ROUNDS"
	rm -f "$work/tokens.txt"
	echo "== $sts_label"
	"$work/sts" bench "$MODE" --url "http://127.0.0.1:$port$path" --server-pid "$sts_pid" "${common[@]}" | tee "$work/sts.out"
	echo
	echo "== $bare_label"
	"$work/sts" bench "$MODE" --url "http://127.0.0.1:$bare_port$path" --server-pid "$bare_pid" "${common[@]}" | tee "$work/bare.out"
	echo
	sts_rps=$(field rps "$work/sts.out")
	bare_rps=$(field rps "$work/bare.out")
	sts_cpu=$(field cpu_us_per_req "$work/sts.out")
	bare_cpu=$(field cpu_us_per_req "$work/bare.out")
	awk -v s="$sts_rps" -v b="$bare_rps" 'BEGIN { printf "%.3f\n", s / b }' >>"$work/rps_ratios"
	awk -v s="$sts_cpu" -v b="$bare_cpu" 'BEGIN { printf "%.3f\n", s / b }' >>"$work/cpu_ratios"
	if [ "$MODE" = introspect ]; then
		awk -v s="$sts_rps" -v b="$bare_rps" 'BEGIN { printf "== throughput: sts %.0f req/s, bare %.0f req/s, ratio %.2f (target ≥ 0.80)\n", s, b, s / b }'
		awk -v s="$sts_cpu" -v b="$bare_cpu" 'BEGIN { printf "== CPU per request: sts %.1fµs, bare %.1fµs, ratio %.2f×\n", s, b, s / b }'
	else
		awk -v s="$sts_cpu" -v b="$bare_cpu" 'BEGIN { printf "== CPU per request: sts %.1fµs, bare %.1fµs, ratio %.2f× (target ≤ 1.5×)\n", s, b, s / b }'
		awk -v s="$sts_rps" -v b="$bare_rps" 'BEGIN { printf "== throughput: sts %.0f req/s, bare %.0f req/s, ratio %.2f\n", s, b, s / b }'
	fi
done
if [ "$ROUNDS" -gt 1 ]; then
	rps_m=$(median <"$work/rps_ratios")
	cpu_m=$(median <"$work/cpu_ratios")
	if [ "$MODE" = introspect ]; then
		printf "== median over %d rounds: throughput ratio %.2f (target ≥ 0.80), CPU per request ratio %.2f×\n" "$ROUNDS" "$rps_m" "$cpu_m"
	else
		printf "== median over %d rounds: CPU per request ratio %.2f× (target ≤ 1.5×), throughput ratio %.2f\n" "$ROUNDS" "$cpu_m" "$rps_m"
	fi
fi
