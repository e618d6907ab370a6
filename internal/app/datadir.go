package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// PrepareDataDir creates dir (0700) if needed and proves it is writable, so
// a bad data_dir fails start-up with one line that names the setting, such
// as `data_dir "./x": not writable: permission denied`, instead of a chain
// of driver errors later.
func PrepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data_dir %q: cannot create: %w", dir, cause(err))
	}
	probe, err := os.CreateTemp(dir, ".sts-write-probe-*")
	if err != nil {
		return fmt.Errorf("data_dir %q: not writable: %w", dir, cause(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// cause strips the *fs.PathError wrapper whose path we already print.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
