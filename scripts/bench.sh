#!/usr/bin/env bash
# The yardstick of docs/performance.md: sts against the standard-library
# floor (`sts bench bare-server`), both driven by wrk (an external,
# low-overhead generator) over keep-alive HTTP/1.1, alternating targets in
# the same run, for three flows:
#
#   exchange            RFC 8693 (RS256 subject token in, ES256 out, CEL
#                       condition and mapping, audit on, limits checked)
#                       vs verify one RS256 JWT + sign one ES256 JWT
#   client-credentials  client_secret_basic, scope read
#                       vs SHA-256 + constant-time compare + sign one ES256 JWT
#   introspect          RFC 7662 of our own access tokens
#                       vs verify one ES256 JWT
#
# wrk gives up on a request after 10 s (a socket error, which fails the
# run). Per target and round: req/s, p50/p99 (wrk --latency), server CPU per
# request (utime+stime from /proc/<pid>/stat around the measured run,
# divided by wrk's completed requests); at the end, each server's peak RSS
# (VmHWM). Then a table of medians and spreads (min–max) over the rounds.
#
#   scripts/bench.sh                          # ROUNDS=3 D=10s C=32 T=2, all flows
#   FLOWS=exchange ROUNDS=5 D=20s scripts/bench.sh
#   REDIS=redis://127.0.0.1:6379/14 scripts/bench.sh   # rate limits in Redis
#   OUT=/tmp/bench.txt scripts/bench.sh       # also keep the raw rows
#   HALF=0 scripts/bench.sh                   # skip the half-saturation runs
#   OVERLOAD=5000 scripts/bench.sh            # instead of the rounds: exchange
#                                             # under wrk with 5000 connections;
#                                             # a rate-capped probe measures the
#                                             # latency of served requests
#   PROFILE=/tmp/prof scripts/bench.sh        # + server CPU and allocation
#                                             # profiles of
#                                             # every measured sts run
#                                             # (ops listener, ops.pprof);
#                                             # with OVERLOAD: CPU, goroutine
#                                             # and heap profiles and a 2 s
#                                             # execution trace, for
#                                             # go run ./scripts/tracelat
#   TRACE=1 scripts/bench.sh                  # + context switches a request (voluntary,
#                                             # involuntary), the
#                                             # kernel's µs of each request's CPU,
#                                             # and sts's peak and current RSS after
#                                             # each of its runs (stderr)
#   GCTRACE=1 scripts/bench.sh                # + each target's garbage collections
#                                             # in each measured run: how many, and
#                                             # their CPU a request (GODEBUG=gctrace=1;
#                                             # stderr)
#   PERF=/tmp/perf scripts/bench.sh           # + a perf profile of both targets in
#                                             # every measured run; compare them with
#                                             # scripts/perfdiff.py (a sample per 250 µs of CPU)
#   VERIFIED_CACHE=0 scripts/bench.sh         # sts without the verified-token
#                                             # cache (federation.verified_token_cache;
#                                             # unset: the default, 10000,
#                                             # which holds all 4096 tokens)
#
# wrk cannot mint, so distinct subject tokens (4096) come from
# `sts bench mint` and access tokens (256) from `sts bench fetch-tokens`;
# the Lua scripts under scripts/bench/ send them round-robin, the same
# files to both targets. Everything runs on loopback from a temporary
# directory (SQLite). The client secret goes to a 0600 file and an
# Authorization-header file the Lua script reads; it is never printed or
# put on a command line.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench/config.sh
. scripts/bench/config.sh
ROUNDS=${ROUNDS:-3}
D=${D:-10s}
C=${C:-32}
T=${T:-2}
WARMUP=${WARMUP:-2s}
FLOWS=${FLOWS:-exchange client-credentials introspect}
for flow in $FLOWS; do
	case $flow in
	exchange | client-credentials | introspect) ;;
	*) echo "bench.sh: unknown flow \"$flow\" in FLOWS (exchange, client-credentials, introspect)" >&2; exit 2 ;;
	esac
done
REDIS=${REDIS:-}
OUT=${OUT:-}
PROFILE=${PROFILE:-}
HALF=${HALF:-1}
OVERLOAD=${OVERLOAD:-}
VERIFIED_CACHE=${VERIFIED_CACHE:-}
TRACE=${TRACE:-}
GCTRACE=${GCTRACE:-}
PERF=${PERF:-}
if [ -n "$PERF" ]; then
	command -v perf >/dev/null || { echo "bench.sh: PERF needs perf (apt-get install linux-perf)" >&2; exit 2; }
	mkdir -p "$PERF"
fi
gctrace=()
[ -n "$GCTRACE" ] && gctrace=(GODEBUG=gctrace=1)
# wrk and sts each need a descriptor per connection.
[ -n "$OVERLOAD" ] && ulimit -n "$(ulimit -Hn)"

if ! command -v wrk >/dev/null; then
	echo "== installing wrk (apt-get)" >&2
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get install -y wrk >/dev/null || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_up URL: until URL answers at all; wait_ready URL: until it answers
# 2xx. sts listens from the start, /readyz 503 while it migrates
# (docs/security.md F-102), so sts is waited for with wait_ready.
wait_up() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }
wait_ready() { for _ in $(seq 300); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }
# cpu_ticks PID: utime + stime in clock ticks (fields 14 and 15 of
# /proc/PID/stat; counted after the ")" that ends the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# sys_ticks PID: stime alone (the kernel's share of cpu_ticks: socket reads
# and writes, fsync, futex wake-ups), for TRACE=1.
sys_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $13 }'; }
# go_mem: what sts's Go runtime holds (its /metrics): the heap in use, its
# next GC target, goroutine stacks, and all it has mapped from the OS.
go_mem() {
	curl -fsS "http://127.0.0.1:${ops_port:-$port}/metrics" | awk '
		/^go_memstats_heap_inuse_bytes / { h = $2 } /^go_memstats_next_gc_bytes / { g = $2 } /^go_memstats_stack_inuse_bytes / { st = $2 } /^go_memstats_sys_bytes / { sys = $2 }
		END { printf "Go heap in use %.1f MiB (next GC at %.1f), stacks %.1f, runtime total from the OS %.1f MiB", h / 1048576, g / 1048576, st / 1048576, sys / 1048576 }'
}
# ctx_switches PID: context switches of all the process's threads so far,
# as "voluntary involuntary": a thread that blocks (a futex sleep, a
# nanosleep, a read with nothing to read) against one the kernel took the
# core from (its time slice ran out on a busy machine). A thread that
# ended meanwhile takes its counts with it.
ctx_switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches:/ { v += $2 } /^nonvoluntary_ctxt_switches:/ { n += $2 } END { print v + 0, n + 0 }'; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
# rss_split PID: the resident set now, as anonymous memory (heap, stacks,
# SQLite's page cache) and file-backed pages (mostly the binary's text).
rss_split() { awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { printf "anon %d MiB + file %d MiB", a / 1024, f / 1024 }' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

# Built as scripts/release.sh and deploy/Dockerfile build what ships:
# static, pure Go (CGO_ENABLED=0), -trimpath. A default `go build` links
# the C library's resolver (net uses cgo when it can), so the process maps
# libc and the dynamic loader too (1.4 MiB of its resident set): not the
# binary that is measured for users. Symbols stay (scripts/rss-sections.py
# reads them); they are not mapped.
CGO_ENABLED=0 go build -trimpath -o "$work/sts" ./cmd/sts
sts="$work/sts"
"$sts" bench keygen --key "$work/key.pem" --jwks "$work/jwks.json" >/dev/null
port=$(free_port)
bench_config "$port" "$work" "$REDIS" >"$work/sts.yaml"
# The ops endpoints on their own listener with PROFILE (pprof) and under
# OVERLOAD (the flood fills the main listener's connection cap, so its
# /metrics would be refused).
if [ -n "$PROFILE" ] || [ -n "$OVERLOAD" ]; then
	ops_port=$(free_port)
	pprof=false
	[ -n "$PROFILE" ] && { mkdir -p "$PROFILE"; pprof=true; }
	printf 'ops: {listen: "127.0.0.1:%s", pprof: %s}\n' "$ops_port" "$pprof" >>"$work/sts.yaml"
fi
# The verified-token cache: the default unless VERIFIED_CACHE says (0: off).
[ -n "$VERIFIED_CACHE" ] && printf 'federation: {verified_token_cache: %d}\n' "$VERIFIED_CACHE" >>"$work/sts.yaml"
env "${gctrace[@]}" "$sts" serve --config "$work/sts.yaml" 2>"$work/serve.log" &
sts_pid=$!
pids+=("$sts_pid")
wait_ready "http://127.0.0.1:$port/readyz" || { cat "$work/serve.log"; exit 1; }

# A service-account principal and a client_secret_basic client. The secret
# `client create` prints once goes straight to 0600 files.
principal=$("$sts" principal create --config "$work/sts.yaml" --org acme --kind service-account --name bench)
(
	umask 077
	"$sts" client create --config "$work/sts.yaml" --org acme --principal "$principal" --name bench \
		--grant-type client_credentials --scope read --audience https://api.bench.invalid |
		awk -v id="$work/client_id.txt" -v sec="$work/client_secret.txt" \
			'NR == 1 { print > id } NR == 2 { print > sec }'
	python3 - "$work/client_id.txt" "$work/client_secret.txt" >"$work/auth.txt" <<'PY'
import base64, sys, urllib.parse
i, s = (open(p).read().strip() for p in sys.argv[1:3])
q = lambda v: urllib.parse.quote_plus(v)
print("Basic " + base64.b64encode((q(i) + ":" + q(s)).encode()).decode())
PY
)
[ -s "$work/client_id.txt" ] && [ -s "$work/client_secret.txt" ] || { echo "sts client create printed no client" >&2; exit 1; }
client=(--client-id "$(cat "$work/client_id.txt")" --client-secret-file "$work/client_secret.txt")

"$sts" bench mint --key "$work/key.pem" --tokens-file "$work/subject.txt" --tokens 4096 \
	--claim repository_owner=acme --claim repository=acme/app >/dev/null
"$sts" bench fetch-tokens --token-url "http://127.0.0.1:$port/oauth2/token" "${client[@]}" \
	--tokens-file "$work/access.txt" --tokens 256 >/dev/null
curl -fsS "http://127.0.0.1:$port/.well-known/jwks.json" >"$work/sts-jwks.json"
issuer=$(curl -fsS "http://127.0.0.1:$port/.well-known/openid-configuration" | python3 -c 'import json, sys; print(json.load(sys.stdin)["issuer"])')

# The three floors, each its own process (so that its CPU and RSS are its
# own).
declare -A bare_port bare_pid
start_bare() {
	local flow=$1
	shift
	bare_port[$flow]=$(free_port)
	env "${gctrace[@]}" "$sts" bench bare-server --listen "127.0.0.1:${bare_port[$flow]}" "$@" >/dev/null 2>"$work/bare-$flow.log" &
	bare_pid[$flow]=$!
	pids+=("$!")
	wait_up "http://127.0.0.1:${bare_port[$flow]}/"
}
start_bare exchange --mode exchange --jwks "$work/jwks.json"
start_bare client-credentials --mode sign "${client[@]}"
start_bare introspect --mode verify --jwks "$work/sts-jwks.json" --issuer "$issuer"

# run FLOW TARGET ROUND [DELAY_MS]: one warm-up and one measured wrk run;
# appends a row "flow target round rps cpu_us p50_us p99_us" to $work/rows,
# or, with DELAY_MS (each connection pauses that long between requests), to
# $work/half.
run() {
	local flow=$1 target=$2 round=$3 delay=${4:-0} pid url log script env=() rows=$work/rows
	[ "$delay" != 0 ] && rows=$work/half
	case $target in
	sts) pid=$sts_pid; url="http://127.0.0.1:$port" log=$work/serve.log ;;
	bare) pid=${bare_pid[$flow]}; url="http://127.0.0.1:${bare_port[$flow]}" log=$work/bare-$flow.log ;;
	esac
	case $flow in
	exchange) url+=/oauth2/token; script=exchange.lua; env=(BENCH_TOKENS="$work/subject.txt") ;;
	client-credentials) url+=/oauth2/token; script=client_credentials.lua; env=(BENCH_AUTH="$work/auth.txt") ;;
	introspect) url+=/oauth2/introspect; script=introspect.lua
		env=(BENCH_TOKENS="$work/access.txt" BENCH_AUTH="$work/auth.txt" BENCH_CHECK='"active":true') ;;
	esac
	env+=(BENCH_DELAY_MS="$delay")
	env "${env[@]}" wrk -t"$T" -c"$C" -d"$WARMUP" --timeout 10s -s "scripts/bench/$script" "$url" >/dev/null
	local c0 c1 x0 x1 g0 g1 s0 s1
	c0=$(cpu_ticks "$pid") x0=$(ctx_switches "$pid") g0=$(wc -l <"$log") s0=$(sys_ticks "$pid")
	local prof_pid=
	if [ -n "$PROFILE" ] && [ "$target" = sts ] && [ "$delay" = 0 ]; then
		# The profile covers the measured run (less a second at each end).
		curl -fsS -o "$PROFILE/$flow-$round.cpu" \
			"http://127.0.0.1:$ops_port/debug/pprof/profile?seconds=$(( ${D%s} - 2 ))" &
		prof_pid=$!
		# What the same seconds allocated (a delta profile: go tool pprof
		# -sample_index=alloc_space, or alloc_objects).
		curl -fsS -o "$PROFILE/$flow-$round.allocs" \
			"http://127.0.0.1:$ops_port/debug/pprof/allocs?seconds=$(( ${D%s} - 2 ))" &
		prof_pid+=" $!"
	fi
	if [ -n "$PERF" ] && [ "$delay" = 0 ]; then
		# Both targets, sampled alike by the kernel (the floor has no pprof), a sample per 250 µs of CPU time:
		# scripts/perfdiff.py compares them symbol by symbol.
		perf record -q -e cpu-clock -c 250000 -p "$pid" -o "$PERF/$flow-$round-$target.perf" -- sleep $(( ${D%s} - 2 )) 2>/dev/null &
		prof_pid+=" $!"
	fi
	env "${env[@]}" wrk -t"$T" -c"$C" -d"$D" --timeout 10s --latency -s "scripts/bench/$script" "$url" >"$work/wrk.out"
	c1=$(cpu_ticks "$pid") x1=$(ctx_switches "$pid") g1=$(wc -l <"$log") s1=$(sys_ticks "$pid")
	# shellcheck disable=SC2086 # two pids
	[ -n "$prof_pid" ] && wait $prof_pid
	local line
	line=$(grep '^wrk_result' "$work/wrk.out") || { cat "$work/wrk.out"; exit 1; }
	val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$line"; }
	# A 503 of the admission middleware is sts shedding by design, not a
	# failure (docs/reliability.md, "The token gate": a token request that
	# waited 100 ms for a running slot is answered 503, as on a machine
	# whose CPU other work also wants); it is reported, and the run kept.
	# Any other answer that is not 200 fails the run, naming its status
	# and first body (scripts/bench/lib.lua).
	if [ "$(val shed)" != 0 ]; then
		echo "$flow $target round $round: $(val shed) of $(val requests) requests shed (503 \"the server is overloaded\": the token gate's 100 ms wait for a running slot, docs/reliability.md; load average $(cut -d' ' -f1 /proc/loadavg))" >&2
	fi
	if [ "$(($(val non2xx) - $(val shed)))" != 0 ] || [ "$(val socket_errors)" != 0 ] || [ "$(val refused)" != 0 ]; then
		echo "$flow $target round $round failed: $line" >&2
		sed -n '/^wrk_status /,/^wrk_result /p' "$work/wrk.out" | grep -v '^wrk_result' >&2 || true
		tail -5 "$work/serve.log" >&2
		exit 1
	fi
	local cpu_us
	cpu_us=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$(val requests)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
	printf '%s %s %s %s %s %s %s\n' "$flow" "$target" "$round" "$(val rps)" "$cpu_us" "$(val p50_us)" "$(val p99_us)" | tee -a "$rows"
	# TRACE=1: context switches a request, the kernel's part of the CPU
	# time, and which run raised sts's peak RSS (stderr, so the rows keep
	# their format).
	# The involuntary ones are also given per ms of CPU: on a loaded machine
	# they follow the CPU time (docs/performance.md, "`client_credentials`,
	# fourth pass").
	[ -n "$TRACE" ] && echo "  $target: $(awk -v x0="$x0" -v x1="$x1" -v c="$((c1 - c0))" -v hz="$hz" -v n="$(val requests)" 'BEGIN { split(x0, a, " "); split(x1, b, " "); v = b[1] - a[1]; i = b[2] - a[2]
		printf "%.2f context switches a request (%.2f voluntary, %.2f involuntary: %.1f per ms of CPU)", (v + i) / n, v / n, i / n, c ? i / (c / hz * 1000) : 0 }'); of its CPU $(awk -v d=$((s1 - s0)) -v hz="$hz" -v n="$(val requests)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }') µs in the kernel$(
		[ "$target" = sts ] && echo "; peak RSS $(($(hwm_kib "$pid") / 1024)) MiB after this run, now $(rss_split "$pid"); $(go_mem)")" >&2
	# GCTRACE=1: the collections of the measured run. A gctrace line's CPU
	# is the sum of "A+B/C/D+E ms cpu" (stop-the-world sweep termination,
	# assist, background and idle marking, mark termination).
	[ -n "$GCTRACE" ] && sed -n "$((g0 + 1)),${g1}p" "$log" | awk -v t="$target" -v n="$(val requests)" '
		/^gc / { split($0, a, " ms cpu"); k = split(a[1], w, " "); m = split(w[k], c, "[+/]")
			for (i = 1; i <= m; i++) ms += c[i]; gcs++ }
		END { printf "  %s: %d collections, one per %.0f requests, %.2f ms of CPU each, %.2f µs a request\n",
			t, gcs, gcs ? n / gcs : 0, gcs ? ms / gcs : 0, ms * 1000 / n }' >&2
	return 0
}

# overload: the exchange probe (4 keep-alive connections, 200 req/s, the
# Go generator, which reports percentiles of served requests only) alone,
# then again while wrk holds $OVERLOAD connections sending as fast as they
# are answered. The probe connects before wrk starts, so its figures are the
# latency of admitted requests, not of getting a connection accepted.
if [ -n "$OVERLOAD" ]; then
	probe() {
		"$sts" bench exchange --url "http://127.0.0.1:$port/oauth2/token" --key "$work/key.pem" \
			--tokens-file "$work/subject.txt" --claim repository_owner=acme -c 4 --rate 200 -d "$D" --warmup 2s --phases |
			grep '^requests\|^latency\|^connections\|^closing\|^broken\|^kept\|^wait' || true
	}
	shed() { curl -fsS "http://127.0.0.1:${ops_port:-$port}/metrics" | awk '/^sts_http_shed_total/ { n += $2; match($0, /class="[^"]*"/); c[substr($0, RSTART + 7, RLENGTH - 8)] = $2 }
		/^sts_http_idle_connections_closed_total / { idle = $2 }
		END { printf "%d", n; for (k in c) printf " %s %d", k, c[k]; printf "; idle connections closed at the cap %d\n", idle }'; }
	# The server's own view of the token endpoint: its duration histogram
	# and its 200 answers. A shed request is refused before routing and
	# counted under no route, so these are the admitted requests, timed
	# from the handler's start (after the request was read) to its end.
	server_hist() {
		curl -fsS "http://127.0.0.1:${ops_port:-$port}/metrics" | awk '
			/^sts_http_request_duration_seconds_bucket/ && /oauth2\/token/ { match($0, /le="[^"]*"/); b[substr($0, RSTART + 4, RLENGTH - 5)] += $2 }
			/^sts_http_requests_total/ && /oauth2\/token/ && /code="200"/ { ok += $2 }
			END { printf "%d %d %d %d %d %d %d\n", ok, b["0.01"], b["0.1"], b["0.25"], b["0.5"], b["1"], b["+Inf"] }'
	}
	# Garbage collections so far, and the longest recent stop-the-world
	# pause (go_gc_duration_seconds, quantile 1), in ms.
	gc_stats() {
		curl -fsS "http://127.0.0.1:${ops_port:-$port}/metrics" | awk '
			/^go_gc_duration_seconds_count/ { n = $2 } /^go_gc_duration_seconds\{quantile="1"\}/ { m = $2 }
			END { printf "%d %.1f\n", n, m * 1000 }'
	}
	# The kernel's TCP counters (the whole machine's): SYNs the listener's
	# full accept queue dropped, and SYNs retransmitted.
	tcp_ext() {
		awk '$1 == "TcpExt:" { if (!h) { split($0, n); h = 1; next } split($0, v); for (i = 2; i <= NF; i++) x[n[i]] = v[i] }
			END { printf "%d %d %d %d\n", x["ListenOverflows"], x["ListenDrops"], x["TCPSynRetrans"], x["TCPTimeouts"] }' /proc/net/netstat
	}
	echo "== $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); probe alone"
	probe
	echo "== probe under wrk -t$T -c$OVERLOAD (exchange); shed before: $(shed)"
	h0=$(server_hist) k0=$(tcp_ext) g0=$(gc_stats)
	probe &
	probe_pid=$!
	# The flood starts when the probe's 2 s warm-up ends: its connections
	# are then all open and kept.
	sleep 2
	c0=$(cpu_ticks "$sts_pid") t0=$(date +%s.%N)
	BENCH_TOKENS="$work/subject.txt" wrk -t"$T" -c"$OVERLOAD" -d"$(( ${D%s} + 2 ))s" --timeout 10s --latency -s scripts/bench/exchange.lua \
		"http://127.0.0.1:$port/oauth2/token" >"$work/wrk.out" 2>&1 &
	wrk_pid=$!
	sleep 2
	if [ -n "$PROFILE" ]; then
		curl -fsS -o "$PROFILE/overload.cpu" "http://127.0.0.1:$ops_port/debug/pprof/profile?seconds=$(( ${D%s} - 2 ))" &
		(sleep 5; curl -fsS -o "$PROFILE/overload.goroutines" "http://127.0.0.1:$ops_port/debug/pprof/goroutine?debug=1") &
		# What the live heap holds (go tool pprof -sample_index=inuse_space).
		(sleep 6; curl -fsS -o "$PROFILE/overload.heap" "http://127.0.0.1:$ops_port/debug/pprof/heap?gc=1") &
		# An execution trace of 2 s (go tool trace -pprof=sched: where
		# goroutines waited runnable).
		(sleep 3; curl -fsS -o "$PROFILE/overload.trace" "http://127.0.0.1:$ops_port/debug/pprof/trace?seconds=2") &
	fi
	# The listener's accept queue, sampled: Recv-Q is the connections
	# waiting to be accepted, Send-Q the backlog.
	# And the Go memory the collector works against, at the same moments.
	for _ in 1 2 3; do
		ss -Hltn "sport = :$port" | awk '{ printf "accept queue %s of %s; ", $2, $3 }'
		curl -fsS "http://127.0.0.1:${ops_port:-$port}/metrics" | awk '
			/^go_memstats_heap_alloc_bytes / { h = $2 } /^go_memstats_stack_inuse_bytes / { st = $2 } /^go_memstats_next_gc_bytes / { g = $2 } /^go_goroutines / { n = $2 }
			/^sts_http_admission_limit\{class="token"\}/ { l = $2 }
			END { printf "heap %.1f MiB (next GC at %.1f), stacks %.1f MiB, %d goroutines", h / 1048576, g / 1048576, st / 1048576, n
				if (l != "") printf "; token requests allowed to run %d", l; print "" }' || echo
		sleep 2
	done
	wait "$probe_pid" "$wrk_pid" || true
	c1=$(cpu_ticks "$sts_pid") t1=$(date +%s.%N)
	h1=$(server_hist) k1=$(tcp_ext) g1=$(gc_stats)
	echo "$g0 $g1" | awk -v t0="$t0" -v t1="$t1" '{ printf "garbage collections during the flood: %d (%.0f a second); longest recent stop-the-world pause %.1f ms\n", $3 - $1, ($3 - $1) / (t1 - t0), $4 }'
	echo "$h0 $h1" | awk '{ n = $14 - $7; printf "server, token endpoint: %d answered 200; its duration histogram: > 10 ms %d, > 100 ms %d, > 250 ms %d, > 500 ms %d, > 1 s %d of %d\n", $8 - $1, n - ($9 - $2), n - ($10 - $3), n - ($11 - $4), n - ($12 - $5), n - ($13 - $6), n }'
	curl -fsS "http://127.0.0.1:${ops_port:-$port}/metrics" | awk '
		/^sts_http_admission_wait_seconds_bucket\{class="token"/ { match($0, /le="[^"]*"/); b[substr($0, RSTART + 4, RLENGTH - 5)] = $2 }
		END { if ("+Inf" in b) printf "token requests that waited for a running slot (admitted or shed): %d; > 10 ms %d, > 50 ms %d, > 100 ms %d\n", b["+Inf"], b["+Inf"] - b["0.01"], b["+Inf"] - b["0.05"], b["+Inf"] - b["0.1"] }'
	echo "$k0 $k1" | awk '{ printf "kernel (whole machine): ListenOverflows +%d, ListenDrops +%d, TCPSynRetrans +%d, TCPTimeouts +%d\n", $5 - $1, $6 - $2, $7 - $3, $8 - $4 }'
	grep '^wrk_result' "$work/wrk.out" || tail -5 "$work/wrk.out"
	echo "sts CPU during the flood: $(awk -v d=$((c1 - c0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.2f cores", d / hz / (t1 - t0) }'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "shed after: $(shed); sts peak RSS (VmHWM) $(($(hwm_kib "$sts_pid") / 1024)) MiB, now $(rss_split "$sts_pid")"
	exit 0
fi

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(go version | cut -d' ' -f3); wrk -t$T -c$C -d$D, $ROUNDS rounds; verified-token cache ${VERIFIED_CACHE:-default}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "flow target round rps cpu_us p50_us p99_us"
[ -n "$TRACE" ] && echo "  sts: peak RSS $(($(hwm_kib "$sts_pid") / 1024)) MiB before the first run, now $(rss_split "$sts_pid"); $(go_mem)" >&2
: >"$work/rows"
for round in $(seq "$ROUNDS"); do
	for flow in $FLOWS; do
		# Alternate which target goes first, so that drift in the machine
		# falls on both.
		if [ $((round % 2)) -eq 1 ]; then order="sts bare"; else order="bare sts"; fi
		for target in $order; do run "$flow" "$target" "$round"; done
	done
done

# Latency below saturation: each target offered about half of its own
# median saturation rate (C connections, each pausing C * 1000 / (rate/2)
# ms between requests; wrk's pause is whole milliseconds, so the offered
# rate is approximate and the achieved one is what the table shows).
if [ "$HALF" = 1 ]; then
	echo
	echo "== half of saturation"
	: >"$work/half"
	for round in $(seq "$ROUNDS"); do
		for flow in $FLOWS; do
			if [ $((round % 2)) -eq 1 ]; then order="sts bare"; else order="bare sts"; fi
			for target in $order; do
				sat=$(awk -v f="$flow" -v t="$target" '$1 == f && $2 == t { print $4 }' "$work/rows" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
				run "$flow" "$target" "$round" "$(awk -v c="$C" -v s="$sat" 'BEGIN { d = c * 1000 / (s / 2); printf "%d", (d < 1 ? 1 : d + 0.5) }')"
			done
		done
	done
fi

echo
echo "== verified-token cache: $(curl -fsS "http://127.0.0.1:${ops_port:-$port}/metrics" |
	awk '/^sts_verified_token_cache_(hits_total|misses_total|entries) / { sub("sts_verified_token_cache_", ""); printf "%s %s  ", $1, $2; n++ } END { if (!n) printf "off" }')"
echo "== peak RSS (VmHWM): sts $(($(hwm_kib "$sts_pid") / 1024)) MiB (one process, every flow, 4096 + 256 tokens; at the end $(rss_split "$sts_pid"));" \
	"floors: $(for f in $FLOWS; do printf '%s %d MiB  ' "$f" $(($(hwm_kib "${bare_pid[$f]}") / 1024)); done)"
[ -n "$OUT" ] && cp "$work/rows" "$OUT"
# The summary: per flow and target, median [min–max] over the rounds; the
# ratios are taken per round (same round, same machine state), then their
# median [min–max].
[ "$HALF" = 1 ] || : >"$work/half"
python3 - "$work/rows" "$work/half" <<'PY'
import collections, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
half = [l.split() for l in open(sys.argv[2])]
by = collections.defaultdict(list)
for f, t, r, rps, cpu, p50, p99 in rows:
    by[f, t].append((int(r), float(rps), float(cpu), float(p50), float(p99)))
def ms(xs, fmt):
    return f"{fmt(statistics.median(xs))} [{fmt(min(xs))}–{fmt(max(xs))}]"
i0 = lambda v: f"{v:.0f}"
f1 = lambda v: f"{v:.1f}"
f2 = lambda v: f"{v:.2f}"
print()
print("| flow | target | req/s | server CPU µs/req | p50 ms | p99 ms |")
print("|---|---|---|---|---|---|")
flows = []
for f, _, *_ in rows:
    if f not in flows: flows.append(f)
for f in flows:
    for t in ("sts", "bare"):
        v = by[f, t]
        print(f"| {f} | {'sts' if t == 'sts' else 'floor'} | {ms([x[1] for x in v], i0)} | {ms([x[2] for x in v], f1)} | "
              f"{ms([x[3] / 1000 for x in v], f2)} | {ms([x[4] / 1000 for x in v], f2)} |")
print()
print("| flow | CPU ratio sts/floor | throughput ratio sts/floor |")
print("|---|---|---|")
for f in flows:
    s = {x[0]: x for x in by[f, "sts"]}
    b = {x[0]: x for x in by[f, "bare"]}
    rs = sorted(set(s) & set(b))
    print(f"| {f} | {ms([s[r][2] / b[r][2] for r in rs], f2)}× | {ms([s[r][1] / b[r][1] for r in rs], f2)} |")
if half:
    hb = collections.defaultdict(list)
    for f, t, r, rps, cpu, p50, p99 in half:
        hb[f, t].append((float(rps), float(p50), float(p99)))
    print()
    print("| flow | target | offered ≈ half of | achieved req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for f in flows:
        for t in ("sts", "bare"):
            v = hb[f, t]
            sat = statistics.median(x[1] for x in by[f, t])
            print(f"| {f} | {'sts' if t == 'sts' else 'floor'} | {sat:.0f} | {ms([x[0] for x in v], i0)} | "
                  f"{ms([x[1] / 1000 for x in v], f2)} | {ms([x[2] / 1000 for x in v], f2)} |")
print()
print("median [min–max] over", len({x[2] for x in rows}), "rounds")
PY
