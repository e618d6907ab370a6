#!/usr/bin/env python3
"""Where sts spends more (or less) than the floor, symbol by symbol.

    PERF=/tmp/perf FLOWS=client-credentials scripts/bench.sh
    scripts/perfdiff.py /tmp/perf/client-credentials-1-sts.perf \\
        /tmp/perf/client-credentials-1-bare.perf --floor-us 78.5

The two profiles are flat `perf record` samples of the two processes in
the same round (scripts/bench.sh PERF=…). Their sample counts are not
comparable as they are (each covers a different number of requests, and
the kernel may throttle sampling), so both are scaled to one request by a
symbol both run exactly as often per request: by default the P-256
scalar-field squaring inside the one ECDSA signature or verification each
flow makes. --floor-us (the floor's server CPU a request, from
bench.sh's table) turns shares into microseconds. The figures are an
estimate for finding where time goes; the CPU a request that bench.sh
measures from /proc is the measurement.
"""

import argparse
import collections
import subprocess
import sys

NORM = "crypto/internal/fips140/nistec.p256OrdSqr.abi0"


def samples(path):
    """Samples per symbol ("[k] name" or "[.] name") of one profile."""
    out = subprocess.run(
        ["perf", "report", "-i", path, "--no-children", "-g", "none", "--sort", "sym", "--stdio", "-n"],
        check=True, capture_output=True, text=True).stdout
    counts = collections.Counter()
    for line in out.splitlines():
        # "    15.74%          2022  [k] pvm_irq_enable"
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0].endswith("%") and parts[1].isdigit():
            counts[parts[3].strip()] += int(parts[1])
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sts")
    p.add_argument("floor")
    p.add_argument("--floor-us", type=float, help="the floor's server CPU a request (µs)")
    p.add_argument("--norm", default=NORM, help="symbol run equally often per request by both (default: %(default)s)")
    p.add_argument("--top", type=int, default=30)
    a = p.parse_args()

    s, f = samples(a.sts), samples(a.floor)
    key = next((k for k in f if k.endswith(a.norm)), None)
    if key is None or s[key] == 0:
        sys.exit(f"perfdiff: {a.norm} is not in both profiles")
    scale = f[key] / s[key]  # sts samples -> samples of as many requests as the floor's
    unit, per = ("µs", a.floor_us / sum(f.values())) if a.floor_us else ("% of the floor", 100 / sum(f.values()))

    total_s, total_f = sum(s.values()) * scale * per, sum(f.values()) * per
    print(f"per request, normalized by {a.norm}: sts {total_s:.1f}, floor {total_f:.1f} {unit} "
          f"(ratio {total_s / total_f:.2f})")
    diff = {k: (s[k] * scale - f[k]) * per for k in set(s) | set(f)}
    print(f"{'sts - floor':>12} {'sts':>8} {'floor':>8}  symbol ({unit})")
    for k, d in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:a.top]:
        print(f"{d:12.2f} {s[k] * scale * per:8.2f} {f[k] * per:8.2f}  {k[:110]}")


if __name__ == "__main__":
    main()
