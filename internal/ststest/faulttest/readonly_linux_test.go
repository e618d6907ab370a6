//go:build linux

package faulttest

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadOnlyFaultLosesNoAcknowledgedAppend checks the read-only fault
// itself (docs/security.md D-25): whatever a program appended and fsynced
// with success while the fault was injected is still there once the file
// system is repaired, as the ledger's checks assume. Recorded under running
// appends, ext4's error aborted the journal transaction that held the block
// allocations of data just appended, and an fsync of that data in the
// instant before the kernel marked the file system read-only still
// returned success (Linux 6.18); after e2fsck the data was gone. In
// TestFaultsSQLite that was an issued token's audit event, on a loaded
// machine: a loss no program could have prevented, reported as sts's.
// The race is the kernel's and not certain to show in a round, so the test
// runs several; against the unfrozen fault about one round in six lost the
// last appends acknowledged.
func TestReadOnlyFaultLosesNoAcknowledgedAppend(t *testing.T) {
	fs, why := newSQLiteFS(t)
	if fs == nil {
		t.Skip(why)
	}
	if _, err := os.Stat(fs.trigger()); err != nil {
		t.Skipf("no ext4 error hook: %v", err)
	}
	if !freezeSafe() {
		t.Skip("Linux before 6.12: the read-only fault is recorded without the freeze (forceReadOnly)")
	}
	for round := range 12 {
		path := filepath.Join(fs.dir, "appends-"+strconv.Itoa(round))
		acked := appendThroughReadOnly(t, fs, path)
		if err := fs.repair(); err != nil {
			t.Fatalf("round %d: repair: %v", round, err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		lost := 0
		for _, rec := range acked {
			off := rec * appendSize
			if off+8 > int64(len(b)) || binary.LittleEndian.Uint64(b[off:]) != uint64(rec+1) {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("round %d: %d of %d appends acknowledged by fsync are gone after the read-only fault and e2fsck", round, lost, len(acked))
		}
	}
}

const appendSize = 4096

// appendThroughReadOnly appends numbered blocks to path from several
// descriptors at once, each followed by an fsync, turns the file system
// read-only under them (forceReadOnly) and returns the numbers of the
// blocks whose fsync succeeded. Every descriptor is closed on return.
func appendThroughReadOnly(t *testing.T, fs *sqliteFS, path string) []int64 {
	t.Helper()
	var (
		next   atomic.Int64
		stop   atomic.Bool
		mu     sync.Mutex
		acked  []int64
		wg     sync.WaitGroup
		opened = make(chan error, 8)
	)
	for range 8 {
		wg.Go(func() {
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
			opened <- err
			if err != nil {
				return
			}
			defer f.Close()
			buf := make([]byte, appendSize)
			for !stop.Load() {
				rec := next.Add(1) - 1
				binary.LittleEndian.PutUint64(buf, uint64(rec+1))
				if _, err := f.WriteAt(buf, rec*appendSize); err != nil {
					return
				}
				if f.Sync() != nil {
					return
				}
				mu.Lock()
				acked = append(acked, rec)
				mu.Unlock()
			}
		})
	}
	var err error
	for range 8 {
		err = errors.Join(err, <-opened)
	}
	if err == nil {
		time.Sleep(200 * time.Millisecond)
		err = fs.forceReadOnly()
	}
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return acked
}
