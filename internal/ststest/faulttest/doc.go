// Package faulttest is the fault harness (docs/reliability.md): its test
// builds the sts binary once, runs `sts serve` on SQLite and on PostgreSQL
// behind a fault proxy, drives mixed writes while it kills the process
// with SIGKILL and restarts it, refuses and black-holes the database, and
// then checks that every write the server acknowledged is present, every
// revoked token is refused, every stored client and every acknowledged
// token has its audit event (audit.mode required), the refresh family it
// rotated throughout was never revoked as reuse, and the SQLite file passes
// integrity_check. Under the same load, with root, it fills SQLite's file
// system (ENOSPC) and turns it read-only (EROFS), and fills PostgreSQL's
// tablespace (SQLSTATE 53100), on file systems it mounts for the test; on
// PostgreSQL it also runs two or three replicas on one database with
// forced key rotations and a database outage while one at a time is
// killed, and checks that every token minted at one replica is active at
// the others.
//
// The short run is part of `go test`; STS_FAULTS_LONG=1 (scripts/faults.sh)
// runs the long one and prints the figures of the fault table.
package faulttest
