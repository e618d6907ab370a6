#!/usr/bin/env bash
# Instructions per client_credentials request of the whole server process
# (user space: net/http, the audit writer, the collector and everything
# else the process runs), sts against the floor, counted by valgrind's
# callgrind. Load-independent where scripts/bench.sh's CPU ratios are not
# (docs/performance.md "`client_credentials`, fourth pass").
#
#   scripts/instr.sh                   # RUNS=3 N=1024 WARM=256 C=8
#   RUNS=5 N=2048 scripts/instr.sh
#   KEEP=/tmp/cg scripts/instr.sh      # keep the callgrind files (callgrind_annotate)
#
# Each run starts the target under callgrind (the configuration of
# scripts/bench/config.sh: SQLite, audit on, rate limits checked), waits
# until it answers a token request, sends WARM unmeasured requests, zeroes
# the counters (callgrind_control -z), sends N requests from
# scripts/ccload (outside valgrind) and dumps the counters: the dump's
# total divided by N. Runs alternate floor and sts. The kernel's work (the
# system calls themselves) is not counted; valgrind also hides the CPU's
# SHA extensions from Go, so SHA-256 and SHA-512 cost more here than on
# the machine, in both targets.
set -euo pipefail
RUNS=${RUNS:-3} N=${N:-1024} WARM=${WARM:-256} C=${C:-8} KEEP=${KEEP:-}
command -v valgrind >/dev/null || { echo "instr.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/bench/config.sh"
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$work/sts" ./cmd/sts && go build -o "$work/ccload" ./scripts/ccload)
sts=$work/sts
"$sts" bench keygen --key "$work/key.pem" --jwks "$work/jwks.json" >/dev/null
port=$(free_port)
bench_config "$port" "$work" "" >"$work/sts.yaml"
"$sts" serve --config "$work/sts.yaml" 2>"$work/init.log" &
pids+=("$!")
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done
principal=$("$sts" principal create --config "$work/sts.yaml" --org acme --kind service-account --name bench)
(
	umask 077
	"$sts" client create --config "$work/sts.yaml" --org acme --principal "$principal" --name bench \
		--grant-type client_credentials --scope read --audience https://api.bench.invalid |
		awk -v id="$work/client_id.txt" -v sec="$work/client_secret.txt" 'NR == 1 { print > id } NR == 2 { print > sec }'
	python3 - "$work/client_id.txt" "$work/client_secret.txt" >"$work/auth.txt" <<'PY'
import base64, sys, urllib.parse
i, s = (open(p).read().strip() for p in sys.argv[1:3])
q = lambda v: urllib.parse.quote_plus(v)
print("Basic " + base64.b64encode((q(i) + ":" + q(s)).encode()).decode())
PY
)
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
pids=()

# count TARGET RUN: one run; prints the instructions per request.
count() {
	local target=$1 run=$2 url pid out="$work/cg.$1.$2"
	local -a cmd
	if [ "$target" = sts ]; then
		cmd=("$sts" serve --config "$work/sts.yaml")
		url=http://127.0.0.1:$port/oauth2/token
	else
		cmd=("$sts" bench bare-server --listen "127.0.0.1:$port" --mode sign
			--client-id "$(cat "$work/client_id.txt")" --client-secret-file "$work/client_secret.txt")
		url=http://127.0.0.1:$port/
	fi
	# asyncpreemptoff: callgrind asserts on Go's preemption signal;
	# cpu.rdtscp=off: valgrind 3.19 does not decode RDTSCP.
	GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off valgrind --tool=callgrind --callgrind-out-file="$out" \
		"${cmd[@]}" >/dev/null 2>"$work/vg.$target.$run.log" &
	pid=$!
	pids+=("$pid")
	# Up once it answers a token request (readyz may time out its checks
	# under valgrind's slowdown).
	for _ in $(seq 600); do "$work/ccload" -url "$url" -auth "$work/auth.txt" -n 1 -c 1 2>/dev/null && break; sleep 0.5; done
	"$work/ccload" -url "$url" -auth "$work/auth.txt" -n "$WARM" -c "$C"
	callgrind_control -z "$pid" >/dev/null
	"$work/ccload" -url "$url" -auth "$work/auth.txt" -n "$N" -c "$C"
	callgrind_control -d "$pid" >/dev/null
	kill "$pid"; wait "$pid" 2>/dev/null || true
	local f total
	f=$(ls -t "$out".* | head -1)
	total=$(awk '/^totals:/ { print $2; exit }' "$f")
	[ -n "$KEEP" ] && { mkdir -p "$KEEP"; cp "$f" "$KEEP/$target-$run.cg"; }
	echo $((total / N))
}

declare -a floor ours ratio
for r in $(seq "$RUNS"); do
	f=$(count bare "$r")
	s=$(count sts "$r")
	floor+=("$f") ours+=("$s")
	ratio+=("$(python3 -c "print(f'{$s / $f:.3f}')")")
	printf 'run %d: sts %d, floor %d instructions a request, ratio %s\n' "$r" "$s" "$f" "${ratio[-1]}"
done
python3 - "${ours[*]}" "${floor[*]}" "${ratio[*]}" <<'PY'
import statistics, sys
for name, xs in zip(("sts", "floor", "ratio"), (list(map(float, a.split())) for a in sys.argv[1:4])):
    print(f"{name}: median {statistics.median(xs):.3f} [{min(xs):.3f}-{max(xs):.3f}]")
PY
