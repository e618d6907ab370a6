#!/bin/sh
# gen.sh regenerates the protobuf and Connect code under internal/gen with
# buf (local plugins through `go tool`, no BSR) and fails if the committed
# tree differs from the result. Run it from anywhere; CI calls it from
# .ci/run. With --write it only regenerates.
set -eu
cd "$(dirname "$0")/.."

go tool -modfile=tools/go.mod buf lint
go tool -modfile=tools/go.mod buf generate

if [ "${1:-}" = "--write" ]; then
	exit 0
fi
# Untracked new files count as changes too.
if ! git diff --exit-code -- internal/gen proto || [ -n "$(git ls-files --others --exclude-standard -- internal/gen)" ]; then
	echo "gen.sh: generated code is out of date; run scripts/gen.sh --write and commit the result" >&2
	exit 1
fi
echo "gen.sh: generated code is up to date"
