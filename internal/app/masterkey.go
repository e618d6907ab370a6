package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"

	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/server"
	"github.com/opensts/sts/internal/storage"
)

// errSealed is the readiness reason when sealed rows exist but their key is
// gone. Generating a new key then would make every sealed row unreadable,
// so the server stays sealed until the operator restores the key.
var errSealed = server.Reason("sealed: master key missing")

// checkKeyFiles refuses master key files (the configured one or
// <data_dir>/master.key, and the previous ones) that group or others may
// read, unless the configuration allows it explicitly.
func checkKeyFiles(cfg config.Config) error {
	if cfg.AllowInsecureMasterKeyFile {
		return nil
	}
	files := slices.Clone(cfg.PreviousMasterKeyFiles)
	switch {
	case cfg.MasterKey != "":
	case cfg.MasterKeyFile != "":
		files = append(files, cfg.MasterKeyFile)
	default:
		files = append(files, cfg.MasterKeyPath())
	}
	for _, f := range files {
		if err := seal.CheckKeyFilePermissions(f); err != nil {
			return err
		}
	}
	return nil
}

// LoadConfiguredKey loads the master key that needs no storage access: the
// one from STS_MASTER_KEY or master_key_file, or an existing
// <data_dir>/master.key. It returns (nil, nil) when the default file does
// not exist yet; any other problem (missing configured file, bad encoding)
// stops start-up.
func LoadConfiguredKey(cfg config.Config) (*seal.Keyring, error) {
	if err := checkKeyFiles(cfg); err != nil {
		return nil, err
	}
	if cfg.MasterKey != "" || cfg.MasterKeyFile != "" {
		key, err := seal.LoadMasterKey(cfg.MasterKeyFile, cfg.MasterKey.Reveal())
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		return keyring(cfg, key)
	}
	key, err := seal.LoadMasterKey(cfg.MasterKeyPath(), "")
	if errors.Is(err, seal.ErrNoMasterKey) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return keyring(cfg, key)
}

// keyring builds the keyring of primary plus the previous master keys the
// configuration names (they open rows not yet re-wrapped by
// `sts keys rotate-master`).
func keyring(cfg config.Config, primary []byte) (*seal.Keyring, error) {
	defer clear(primary)
	var old [][]byte
	defer func() {
		for _, k := range old {
			clear(k)
		}
	}()
	for _, f := range cfg.PreviousMasterKeyFiles {
		k, err := seal.LoadMasterKey(f, "")
		if err != nil {
			return nil, fmt.Errorf("previous_master_key_files: %w", err)
		}
		old = append(old, k)
	}
	kr, err := seal.NewKeyring(primary, old...)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return kr, nil
}

// generateKey creates <data_dir>/master.key, but only when storage holds
// nothing sealed under an earlier key (no signing keys, host tokens or
// server secrets). It
// returns errSealed when sealed rows exist. It logs the path and key ID,
// never the key.
func generateKey(ctx context.Context, cfg config.Config, store storage.Store, logger *slog.Logger) (*seal.Keyring, error) {
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("check for sealed rows: %w", err)
	}
	hosts, err := store.ListHostTokens(ctx, storage.HostTokenFilter{Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("check for sealed rows: %w", err)
	}
	secrets, err := store.ListServerSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("check for sealed rows: %w", err)
	}
	path := cfg.MasterKeyPath()
	if len(keys) > 0 || len(hosts) > 0 || len(secrets) > 0 {
		logger.ErrorContext(ctx, "master key missing but storage holds sealed rows; not ready, and refusing to generate a new key over them. "+
			"Every replica needs the same master key: give this one the key the others (or the first start) use, "+
			"as STS_MASTER_KEY or master_key_file (or restore it to path), then restart. "+
			"For a new deployment, write one with `sts keys generate-master --out FILE` before the first replica starts. "+
			"See docs/operations.md#master-key-escrow",
			"path", path, "signing_keys", len(keys), "host_tokens", len(hosts), "server_secrets", len(secrets))
		return nil, errSealed
	}
	key, err := seal.GenerateMasterKeyFile(path)
	if errors.Is(err, fs.ErrExist) {
		return LoadConfiguredKey(cfg) // another process won the race
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	kr, err := keyring(cfg, key)
	if err != nil {
		return nil, err
	}
	logger.InfoContext(ctx, "generated master key; back it up: without it sealed tokens cannot be read",
		"path", path, "key_id", kr.PrimaryID())
	return kr, nil
}
