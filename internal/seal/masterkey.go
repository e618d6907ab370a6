package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ErrNoMasterKey means no master key was configured and none exists at the
// default location.
var ErrNoMasterKey = errors.New("seal: no master key")

// LoadMasterKey returns the master key from env (the base64 text of
// STS_MASTER_KEY) when it is set, else from file. A missing file gives an
// error wrapping ErrNoMasterKey; every other problem (bad encoding, wrong
// length, unreadable file) is a different error, because those must stop
// start-up rather than lead to a new key being generated.
func LoadMasterKey(file, env string) ([]byte, error) {
	if env != "" {
		key, err := decodeKey(env)
		if err != nil {
			return nil, fmt.Errorf("seal: STS_MASTER_KEY: %w", err)
		}
		return key, nil
	}
	if file == "" {
		return nil, ErrNoMasterKey
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNoMasterKey, file)
	}
	if err != nil {
		return nil, fmt.Errorf("seal: read master key: %w", err)
	}
	key, err := decodeKey(string(b))
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("seal: master key file %s: %w", file, err)
	}
	return key, nil
}

func decodeKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not valid base64")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("want %d bytes after base64 decoding, got %d", KeySize, len(key))
	}
	return key, nil
}

// CheckKeyFilePermissions returns an error naming file and the fix when
// its permission bits let group or others read (or write) it: a master key
// anyone on the host can read protects nothing. A missing file is no
// error (LoadMasterKey reports it); on Windows, whose permission model the
// mode bits do not describe, it always returns nil.
func CheckKeyFilePermissions(file string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("master key file %s has mode %04o, readable beyond its owner: run chmod 600 %s (or set allow_insecure_master_key_file)", file, mode, file)
	}
	return nil
}

// GenerateMasterKeyFile creates a new random master key at path (base64
// text, mode 0600). It refuses to overwrite an existing file, so a key that
// seals existing rows can never be replaced by accident.
func GenerateMasterKeyFile(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("seal: create master key directory: %w", err)
	}
	key := make([]byte, KeySize)
	rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seal: create master key: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("seal: write master key: %w", err)
	}
	return key, nil
}
