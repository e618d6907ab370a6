#!/usr/bin/env bash
# Load benchmark of issue 4: a full RFC 8693 exchange (RS256 in, ES256 out,
# CEL condition and mapping, audit on, rate limits checked) against the bare
# verify-one-sign-one handler, measured side by side by the same generator.
#
#   scripts/bench.sh            # C=32 connections, D=20s each
#   C=16 D=10s scripts/bench.sh
#   RATE=2500 scripts/bench.sh  # latency at a fixed request rate
#   ROUNDS=3 scripts/bench.sh   # alternate the targets 3 times, median ratio
#
# Everything runs on loopback from a temporary directory (SQLite). The
# generator shares the machine's cores with the server; both targets are
# measured the same way, so the CPU-per-request ratio is what to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${C:-32}
D=${D:-20s}
RATE=${RATE:-0}
ROUNDS=${ROUNDS:-1}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/sts" ./cmd/sts
"$work/sts" bench keygen --key "$work/key.pem" --jwks "$work/jwks.json" >/dev/null
port=$(free_port)
bare_port=$(free_port)
cat >"$work/sts.yaml" <<YAML
listen: 127.0.0.1:$port
data_dir: $work/data
log: {level: warn, format: json}
# Limits stay on (every request is checked) but never bind at this load.
rate_limits:
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
	sts_cpu=$(sed -n 's/^result .*cpu_us_per_req=\([0-9.]*\).*/\1/p' "$work/sts.out")
	bare_cpu=$(sed -n 's/^result .*cpu_us_per_req=\([0-9.]*\).*/\1/p' "$work/bare.out")
	ratio=$(awk -v s="$sts_cpu" -v b="$bare_cpu" 'BEGIN { printf "%.3f", s / b }')
	ratios+=("$ratio")
	awk -v s="$sts_cpu" -v b="$bare_cpu" 'BEGIN { printf "== CPU per request: sts %.1fµs, bare %.1fµs, ratio %.2f× (target ≤ 1.3×)\n", s, b, s / b }'
done
if [ "$ROUNDS" -gt 1 ]; then
	printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END {
		m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
		printf "== median ratio over %d rounds: %.2f× (min %.2f×, max %.2f×; target ≤ 1.3×)\n", NR, m, r[1], r[NR] }'
fi
