#!/usr/bin/env python3
"""Which pages of a running Go executable are resident, by ELF section and
by module (docs/performance.md "Memory policy").

    scripts/rss-sections.py PID [TOP]

Reads /proc/PID/maps and /proc/PID/pagemap (the "present" bit; root or the
process's owner) for the mappings of the executable, and attributes each
present page to its ELF section (readelf -S), the pages of .text to the
functions they hold (go tool nm -size), grouped by module, and the pages
of .gopclntab to its sub-tables (from the pcHeader). Reading pagemap faults
nothing in. The kernel maps file pages 64 KiB around each fault
(fault-around), so a page counts as present when anything near it ran.
"""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = 4096
pid = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
exe = os.readlink(f"/proc/{pid}/exe")

maps = []
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    if len(f) > 5 and f[5] == exe:
        a, b = (int(x, 16) for x in f[0].split("-"))
        maps.append((a, b))
present = set()
with open(f"/proc/{pid}/pagemap", "rb") as pm:
    for a, b in maps:
        pm.seek(a // PAGE * 8)
        data = pm.read((b - a) // PAGE * 8)
        for i in range((b - a) // PAGE):
            if struct.unpack_from("<Q", data, i * 8)[0] >> 63:
                present.add(a + i * PAGE)

secs, offs = [], {}
out = subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout
for line in out.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
    if m and int(m.group(2), 16) > 0:
        secs.append((int(m.group(2), 16), int(m.group(4), 16), m.group(1)))
        offs[m.group(1)] = int(m.group(3), 16)


def in_sec(name):
    a, s, _ = next(x for x in secs if x[2] == name)
    return a, s


bysec = collections.Counter()
for pg in present:
    bysec[next((n for a, s, n in secs if a <= pg < a + s), "other")] += 1
print(f"{exe}: {len(present) * 4} KiB of the executable resident")
print("by section (resident KiB / size KiB):")
for a, s, n in secs:
    if bysec[n]:
        print(f"  {n:14s} {bysec[n] * 4:7d} / {s // 1024:7d}")

# .gopclntab sub-tables (Go 1.20+ pcHeader: magic, pads, nfunc, nfiles,
# textStart, then the offsets of funcnametab, cutab, filetab, pctab and
# the function table).
a, s = in_sec(".gopclntab")
with open(exe, "rb") as fh:
    fh.seek(offs[".gopclntab"])
    hdr = fh.read(72)
nfunc, _, _, fno, cuo, fto, pco, plo = struct.unpack_from("<QQQQQQQQ", hdr, 8)
parts = [("funcnametab", fno), ("cutab", cuo), ("filetab", fto), ("pctab", pco), ("functab+_func", plo), ("end", s)]
print(f".gopclntab ({nfunc} functions):")
for (n, lo), (_, hi) in zip(parts, parts[1:]):
    r = sum(1 for pg in present if a + lo <= pg < a + hi)
    print(f"  {n:14s} {r * 4:7d} / {(hi - lo) // 1024:7d}")

# .text by module: each present page's bytes go to the functions on it.
syms = []
nm = subprocess.run(["go", "tool", "nm", "-size", "-sort", "address", exe], capture_output=True, text=True, check=True).stdout
for line in nm.splitlines():
    f = line.split(None, 3)
    if len(f) == 4 and f[2] in "Tt":
        syms.append((int(f[0], 16), int(f[1]), f[3]))
addrs = [x[0] for x in syms]
PREFIXES = ["github.com/", "golang.org/x/", "google.golang.org/", "go.opentelemetry.io/", "modernc.org/", "cel.dev/", "connectrpc.com/"]


def module(name):
    i = name.rfind("/", 0, name.find("[") if "[" in name else len(name))
    path = name[: name.find(".", i + 1)] if name.find(".", i + 1) > 0 else name
    for p in PREFIXES:
        if path.startswith(p):
            rest = path[len(p):].split("/")
            return p + "/".join(rest[: 2 if p == "github.com/" else 1])
    return "std " + path.split("/")[0]


size, res = collections.Counter(), collections.Counter()
for sa, sz, n in syms:
    size[module(n)] += sz
ta, ts = in_sec(".text")
for pg in present:
    if ta <= pg < ta + ts:
        i = max(bisect.bisect_right(addrs, pg) - 1, 0)
        while i < len(syms) and syms[i][0] < pg + PAGE:
            sa, sz, n = syms[i]
            ov = min(sa + sz, pg + PAGE) - max(sa, pg)
            if ov > 0:
                res[module(n)] += ov
            i += 1
print(f".text by module, top {top} (resident KiB of KiB):")
for m, v in res.most_common(top):
    print(f"  {v // 1024:6d} of {size[m] // 1024:6d}  {m}")
