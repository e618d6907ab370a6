#!/bin/sh
# release.sh builds the release binaries of sts for linux and darwin on amd64
# and arm64 into dist/, statically linked (pure Go, CGO_ENABLED=0) and
# reproducible (-trimpath, no build id), and writes dist/SHA256SUMS.
#
#   scripts/release.sh v0.2.0          # every platform
#   PLATFORMS=linux/amd64 scripts/release.sh v0.2.0
#
# The version is stamped into `sts version`; the VCS revision comes from the
# build info (-buildvcs=true, whatever GOFLAGS says), so build from a clean
# checkout of the tag.
set -eu
cd "$(dirname "$0")/.."

version=${1:?usage: scripts/release.sh VERSION (for example v0.2.0)}
platforms=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"}
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
	echo "release.sh: the work tree has uncommitted changes; release from a clean checkout" >&2
	exit 1
fi

rm -rf dist
mkdir -p dist
for p in $platforms; do
	os=${p%/*}
	arch=${p#*/}
	out="dist/sts_${version}_${os}_${arch}"
	echo "building $out"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=true \
		-ldflags "-s -w -buildid= -X github.com/opensts/sts/internal/cli.version=$version" \
		-o "$out" ./cmd/sts
done
(cd dist && sha256sum sts_* >SHA256SUMS)
cat dist/SHA256SUMS
