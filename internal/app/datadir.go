package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// missingDirs lists dir and each of its parents that does not exist yet,
// deepest first: what os.MkdirAll(dir) is about to create.
func missingDirs(dir string) []string {
	var out []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			return out
		}
		out = append(out, d)
		if filepath.Dir(d) == d {
			return out
		}
	}
}

// removeEmptyDirs removes each of dirs, deepest first, that is still
// empty: os.Remove refuses a directory holding anything, so a database or
// a master key written meanwhile is never touched.
func removeEmptyDirs(dirs []string) {
	for _, d := range dirs {
		if os.Remove(d) != nil {
			return
		}
	}
}
