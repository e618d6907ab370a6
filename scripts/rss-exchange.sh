#!/usr/bin/env bash
# The resident set of one `sts serve`, idle and after the exchange under
# wrk (docs/performance.md "Memory policy"):
#
#   scripts/rss-exchange.sh BINARY [SECONDS]        # default 8 s of load
#   DROP_CACHES=1 scripts/rss-exchange.sh BINARY    # root: empty the page
#                                                   # cache first
#
# A fresh server with scripts/bench.sh's configuration (SQLite, one pool,
# limits checked), 4096 distinct subject tokens, `wrk -t2 -c32`. Prints, idle
# (2 s after /readyz) and after the load: VmRSS split into anonymous and
# file-backed pages, VmHWM (peak), the present pages of .text, .rodata and
# .gopclntab (scripts/rss-sections.py; all figures MiB), and for the load
# run requests/s, collections per 1 000 exchanges and server CPU µs per
# exchange. How the page cache holds the executable moves the file-backed
# figures by MiB: DROP_CACHES=1 makes runs comparable (every run then reads
# the binary from disk the same way).
set -euo pipefail
bin=$(realpath "$1")
load=${2:-8}
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench/config.sh
. scripts/bench/config.sh
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$work"; }
trap cleanup EXIT
cp "$bin" "$work/sts"
sts=$work/sts
"$sts" bench keygen --key "$work/key.pem" --jwks "$work/jwks.json" >/dev/null
"$sts" bench mint --key "$work/key.pem" --tokens-file "$work/subject.txt" --tokens 4096 \
	--claim repository_owner=acme --claim repository=acme/app >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bench_config "$port" "$work" >"$work/sts.yaml"
if [ "${DROP_CACHES:-0}" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
"$sts" serve --config "$work/sts.yaml" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
sleep 2
status() { awk '/^VmHWM:/ { h = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 }
	END { printf "rss %.1f = anon %.1f + file %.1f, peak %.1f", (a + f) / 1024, a / 1024, f / 1024, h / 1024 }' "/proc/$pid/status"; }
sections() { python3 scripts/rss-sections.py "$pid" | awk '/^  \.(text|rodata|gopclntab) / { printf " %s %.1f", $1, $2 / 1024 }'; }
echo "idle: $(status);$(sections)"
gcs() { curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^go_gc_duration_seconds_count/ { print $2 }'; }
ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'; }
g0=$(gcs) c0=$(ticks)
BENCH_TOKENS="$work/subject.txt" wrk -t2 -c32 -d"${load}s" --timeout 10s -s scripts/bench/exchange.lua \
	"http://127.0.0.1:$port/oauth2/token" >"$work/wrk.out"
g1=$(gcs) c1=$(ticks)
line=$(grep '^wrk_result' "$work/wrk.out")
n=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$line")
echo "load: $(status);$(sections); $(awk -v g=$((g1 - g0)) -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$n" -v l="$line" \
	'BEGIN { match(l, /rps=[0-9.]*/); printf "%s, gc/1000 %.2f, cpu_us %.0f", substr(l, RSTART, RLENGTH), g * 1000 / n, c / hz * 1e6 / n }')"
