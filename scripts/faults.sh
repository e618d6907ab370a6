#!/usr/bin/env bash
# The long fault run of docs/reliability.md: builds sts once, then on SQLite
# and on PostgreSQL (behind a fault proxy) drives mixed writes while it
# kills `sts serve` with SIGKILL 20 times, refuses and black-holes the
# database once each (as root: fills SQLite's file system and turns it
# read-only once each, and fills PostgreSQL's tablespace once), and checks every
# acknowledged write, every revoked
# token, the audit trail (every stored client, PAT and host token and every
# acknowledged token has its event, audit.mode required), the refresh family (never revoked
# across the kills) and (SQLite) integrity_check; then three replicas on one
# PostgreSQL database with forced key rotations, 12 kills, and every token
# of one replica active at the others. Prints one FAULTS line per run:
# the figures of the fault table.
#
#   scripts/faults.sh
#   STS_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable scripts/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STS_FAULTS_LONG=1 go test ./internal/ststest/faulttest/ -count=1 -v -timeout 30m 2>&1 |
	tee /dev/stderr | grep -E 'FAULTS|^(--- )?(PASS|FAIL)' || true
