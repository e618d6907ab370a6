package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/pepper"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/signer"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/sts"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Inspect and rotate signing keys and the master key",
		Long: `Signing keys live in storage, their private halves sealed under the master
key. A key is "next" (published in the JWKS, not yet signing), then "active"
(signing), then "retired" (published until every token it signed has
expired), then deleted; a compromised key is revoked (removed at once). serve
rotates on schedule (keys.rotation_period); these commands act on the same
storage, so every replica sees the result.`,
	}
	cmd.AddCommand(newKeysListCmd(), newKeysRotateCmd(), newKeysRevokeCmd(), newKeysRotateMasterCmd(), newKeysGenerateMasterCmd())
	return cmd
}

// withStore loads the configuration, opens and checks storage (openStore),
// and calls fn.
func withStore(cmd *cobra.Command, fn func(ctx context.Context, cfg config.Config, store *sqlstore.Store) error) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	store, err := openStore(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(cmd.Context(), cfg, store)
}

// keysAdmin is what keys list, rotate and revoke do, remotely
// (sts.v1.KeyService, instance administrators) or in the database.
type keysAdmin interface {
	list(ctx context.Context) ([]*stsv1.SigningKey, error)
	// rotate rotates every algorithm's keys; lines describe each one.
	rotate(ctx context.Context, force bool) (res *stsv1.RotateSigningKeyResponse, lines []string, err error)
	// revoke withdraws the key kid at once (rotating first if it signs).
	revoke(ctx context.Context, kid string) (*stsv1.RevokeSigningKeyResponse, error)
}

func (a *admin) keys(cmd *cobra.Command) keysAdmin {
	if a.remote != nil {
		return remoteKeys{stsv1connect.NewKeyServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}
	}
	return directKeys{a, cmd}
}

type remoteKeys struct{ c stsv1connect.KeyServiceClient }

func (r remoteKeys) list(ctx context.Context) ([]*stsv1.SigningKey, error) {
	res, err := r.c.ListSigningKeys(ctx, &stsv1.ListSigningKeysRequest{})
	return res.GetKeys(), err
}

func (r remoteKeys) rotate(ctx context.Context, force bool) (*stsv1.RotateSigningKeyResponse, []string, error) {
	res, err := r.c.RotateSigningKey(ctx, &stsv1.RotateSigningKeyRequest{Force: force})
	if err != nil {
		return nil, nil, forceHint(err)
	}
	line := fmt.Sprintf("rotated: active key %s -> %s, next key %s", printable(res.GetRetiredKid()), printable(res.GetActivatedKid()), printable(res.GetNextKid()))
	if res.GetAlreadyRotated() {
		line = "already rotated by another caller"
	}
	return res, []string{line}, nil
}

// forceHint turns the API's hint at its force field into the flag a CLI
// user passes, as direct mode says it.
func forceHint(err error) error {
	ce, ok := errors.AsType[*connect.Error](err)
	if !ok || ce.Code() != connect.CodeFailedPrecondition {
		return err
	}
	if msg, ok := strings.CutSuffix(ce.Message(), api.ForceHint); ok {
		return connect.NewError(ce.Code(), errors.New(msg+" (use --force to rotate anyway)"))
	}
	return err
}

func (r remoteKeys) revoke(ctx context.Context, kid string) (*stsv1.RevokeSigningKeyResponse, error) {
	return r.c.RevokeSigningKey(ctx, &stsv1.RevokeSigningKeyRequest{Kid: kid})
}

type directKeys struct {
	a   *admin
	cmd *cobra.Command
}

func (d directKeys) list(ctx context.Context) ([]*stsv1.SigningKey, error) {
	keys, err := signer.ListKeys(ctx, d.a.store, app.SignerConfig(d.a.cfg))
	if err != nil {
		return nil, err
	}
	out := make([]*stsv1.SigningKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, api.SigningKeyToProto(k))
	}
	return out, nil
}

func (d directKeys) rotate(ctx context.Context, force bool) (*stsv1.RotateSigningKeyResponse, []string, error) {
	store, cfg := d.a.store, d.a.cfg
	logger := newLogger(cfg.Log, d.cmd.ErrOrStderr())
	m, err := managerFor(ctx, cfg, store, logger)
	if err != nil {
		return nil, nil, err
	}
	before := m.ActiveKeyIDs()
	// Each algorithm's rotation commits with its audit event; those that
	// committed before another algorithm failed are reported all the same.
	rs, err := m.RotateEach(ctx, force, func(r signer.Rotation) storage.AuditEvent {
		return r.AuditEvent(cliCaller.Actor, "", force, time.Now())
	})
	var lines []string
	for _, r := range rs {
		after := m.ActiveKeyIDs()[r.Algorithm]
		if r.AlreadyRotated {
			lines = append(lines, fmt.Sprintf("%s: already rotated by another caller: active key %s", r.Algorithm, after))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s: rotated: active key %s -> %s", r.Algorithm, before[r.Algorithm], after))
	}
	if err != nil {
		for _, l := range lines {
			fmt.Fprintln(d.cmd.ErrOrStderr(), l)
		}
		if errors.Is(err, signer.ErrNextNotReady) {
			return nil, nil, fmt.Errorf("%w (use --force to rotate anyway)", err)
		}
		return nil, nil, err
	}
	res := &stsv1.RotateSigningKeyResponse{}
	if len(rs) > 0 {
		r := rs[0]
		res = &stsv1.RotateSigningKeyResponse{Rotated: r.Rotated, AlreadyRotated: r.AlreadyRotated,
			ActivatedKid: r.Activated, RetiredKid: r.Retired, NextKid: r.Next, DeletedKids: r.Deleted}
	}
	if res.Keys, err = d.list(ctx); err != nil {
		return nil, nil, err
	}
	return res, lines, nil
}

func (d directKeys) revoke(ctx context.Context, kid string) (*stsv1.RevokeSigningKeyResponse, error) {
	logger := newLogger(d.a.cfg.Log, d.cmd.ErrOrStderr())
	m, err := managerFor(ctx, d.a.cfg, d.a.store, logger)
	if err != nil {
		return nil, err
	}
	r, err := m.RevokeKey(ctx, kid, func(r signer.Revocation) storage.AuditEvent {
		return r.AuditEvent(cliCaller.Actor, "", time.Now())
	})
	switch {
	case errors.Is(err, signer.ErrKeyNotFound):
		return nil, sts.Wrap(sts.NotFound, err, fmt.Sprintf("signing key %q not found", kid))
	case err != nil:
		return nil, err
	}
	res := &stsv1.RevokeSigningKeyResponse{RevokedKid: r.KeyID, State: api.SigningKeyStateToProto(r.State),
		ActivatedKid: r.Activated, NextKid: r.Next, DeletedKids: r.Deleted}
	if res.Keys, err = d.list(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

func newKeysListCmd() *cobra.Command {
	return adminFlags(&cobra.Command{
		Use:   "list",
		Short: "List signing keys (no key material; needs no master key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				keys, err := a.keys(cmd).list(ctx)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), keys, false)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tROTATES AT\tDELETE AFTER")
				for _, k := range keys {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(k.GetKid()), printable(k.GetAlgorithm()), enumWord(k.GetState()),
						stampPB(k.GetCreatedAt()), stampPB(k.GetSignsFrom()), stampPB(k.GetRotatesAt()), stampPB(k.GetDeleteAfter()))
				}
				return w.Flush()
			})
		},
	})
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// managerFor opens the signing keys of every configured algorithm
// (keys.algorithm and keys.extra_algorithms) with the configured master key.
func managerFor(ctx context.Context, cfg config.Config, store *sqlstore.Store, logger *slog.Logger) (*signer.Multi, error) {
	kr, err := app.LoadConfiguredKey(cfg)
	if err != nil {
		return nil, err
	}
	if kr == nil {
		return nil, errors.New("master key: none configured and " + cfg.MasterKeyPath() + " does not exist")
	}
	m, err := signer.NewMulti(store, kr, app.SignerConfig(cfg), cfg.Keys.ExtraAlgorithms...)
	if err != nil {
		return nil, err
	}
	m.SetLogger(logger)
	if err := m.Init(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func newKeysRotateCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Make the next key active and publish a new next key",
		Long: `Rotate every algorithm's keys (keys.algorithm and keys.extra_algorithms) now
instead of waiting for keys.rotation_period. Each next key must have
been published for keys.publish_ahead, so that every verifier already has it;
--force skips that wait (knowing that verifiers with a stale JWKS cache
reject new tokens until they refetch). A rotation keeps the retired key
published, and the tokens it signed verifying, until they have expired:
for a compromised key use sts keys revoke.
A sealed key set (wrong or missing master key) is never rotated, forced or
not. Running servers on the same database pick the change up within 2 s;
sts.v1.KeyService/RotateSigningKey does the same rotation through the API
and takes effect on the server that answers it at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				res, lines, err := a.keys(cmd).rotate(ctx, force)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), []*stsv1.RotateSigningKeyResponse{res}, true)
				}
				for _, l := range lines {
					fmt.Fprintln(cmd.ErrOrStderr(), l)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "rotate even if the next key was published less than keys.publish_ahead ago")
	return adminFlags(cmd)
}

func newKeysRevokeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke KID",
		Short: "Withdraw a compromised signing key at once: every token it signed stops verifying",
		Long: `Remove the signing key KID (see sts keys list) from the key set at once, for
a key whose private half may be in someone else's hands. A rotation, even
with --force, keeps the retired key published and its tokens verifying for
keys.max_token_lifetime + leeway (12 h by default), so tokens forged with
it would keep passing too; revoke does not. Every token the key signed,
legitimate ones included, then fails verification: their holders must get
new ones.

An active key is first replaced by the next key (which signs at once, as
after rotate --force) and a new next key is published; a next key is
replaced by a new one; a retired key is just dropped. The active or next
key of a sealed key set (master key missing or wrong) is never revoked,
since nothing could sign in its place. Through the API the server that
answers stops publishing and trusting the key at once; every other server
(and every server after a revocation in the database) within 2 s, when it
next checks the stored key set; resource servers when their cached copy of
the JWKS expires.

A key ID is base64url and may begin with "-", which would read as a flag:
give such a KID as --kid=KID (or after --).`,
		Example: `  sts keys revoke 1d6qsJbIxAPJk3oXGQ0Y4aZ-Hk5lbUd0G7D0C1xYz2Q
  sts keys revoke --kid=-cDu8t8HtwR7YKDp7MNnOxTUPhdVV-KnX5CsVT4bYhQ`,
		Args: func(cmd *cobra.Command, args []string) error {
			if k, _ := cmd.Flags().GetString("kid"); k != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			kid, _ := cmd.Flags().GetString("kid")
			if kid == "" {
				kid = args[0]
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				res, err := a.keys(cmd).revoke(ctx, kid)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), []*stsv1.RevokeSigningKeyResponse{res}, true)
				}
				w := cmd.ErrOrStderr()
				fmt.Fprintf(w, "revoked: key %s (was %s) is no longer published nor trusted; every token it signed fails verification\n",
					printable(res.GetRevokedKid()), enumWord(res.GetState()))
				if res.GetActivatedKid() != "" {
					fmt.Fprintf(w, "active key %s now signs in its place\n", printable(res.GetActivatedKid()))
				}
				if res.GetNextKid() != "" {
					fmt.Fprintf(w, "new next key %s published\n", printable(res.GetNextKid()))
				}
				if a.remote != nil {
					fmt.Fprintln(w, "the server that answered dropped it at once; other servers drop it within 2 s")
				} else {
					fmt.Fprintln(w, "running servers drop it within 2 s")
				}
				return nil
			})
		},
	}
	cmd.Flags().String("kid", "", "the key ID to revoke, instead of KID (for one that begins with \"-\")")
	return adminFlags(cmd)
}

func newKeysRotateMasterCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-master",
		Short: "Re-wrap every sealed row under the current master key",
		Long: `Re-wrap every sealed row (signing keys, the digest pepper, host-token data
keys) under the configured master key,
opening rows with the keys listed in previous_master_key_files.

Rotating the master key without downtime:
  1. sts keys generate-master --out new.key
  2. Restart every replica with master_key_file: new.key and
     previous_master_key_files: [old.key]; they read old and new rows alike.
  3. sts keys rotate-master (same configuration).
  4. Remove previous_master_key_files and restart; keep old.key offline
     until you are sure no backup needs it.

A row that does not open (tampered with or moved in storage, or sealed under
a key that is not configured) is left as it is; every other row is still
re-wrapped, and the command exits 1 naming the rows left behind by ID. A host
token among them is deleted through the API (sts host-token delete ID), which
does not need to open it; then run rotate-master again before step 4.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, func(ctx context.Context, cfg config.Config, store *sqlstore.Store) error {
				kr, err := app.LoadConfiguredKey(cfg)
				if err != nil {
					return err
				}
				if kr == nil {
					return errors.New("master key: none configured")
				}
				// Each table is re-wrapped even when another could not be:
				// what is left under the old key is named at the end.
				n, errKeys := signer.ResealKeys(ctx, store, kr)
				m, errPepper := pepper.Reseal(ctx, store, kr)
				h, errHost := resealHostTokens(ctx, store, kr)
				fmt.Fprintf(cmd.ErrOrStderr(), "re-wrapped %d signing key(s), %d server secret(s) and %d host token(s) under master key %s\n", n, m, h, kr.PrimaryID())
				return rotateMasterErr(errKeys, errPepper, errHost)
			})
		},
	}
}

// rotateMasterErr joins what rotate-master could not re-wrap, with what to
// do about host tokens that do not open; nil when everything moved.
func rotateMasterErr(errKeys, errPepper, errHost error) error {
	if errKeys == nil && errPepper == nil && errHost == nil {
		return nil
	}
	var re *seal.ResealError
	if errors.As(errHost, &re) {
		errHost = fmt.Errorf("%d host token(s) do not open (tampered with, moved, or sealed under a master key that is not configured) and stay under their old master key: %s\n"+
			"  If the master key that sealed them is configured, their rows were changed in storage and cannot be trusted: delete each through the API\n"+
			"  (sts host-token delete ID, or DeleteHostAuthenticationToken; deleting does not need to open it), have its owner store it again,\n"+
			"  and run sts keys rotate-master again before removing the old key from previous_master_key_files",
			len(re.IDs), strings.Join(re.IDs, ", "))
	}
	return fmt.Errorf("rotate-master: not every sealed row was re-wrapped; keep the old master key configured:\n%w", errors.Join(errKeys, errPepper, errHost))
}

func newKeysGenerateMasterCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "generate-master",
		Short: "Write a new random master key to a file (mode 0600)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			key, err := seal.GenerateMasterKeyFile(out)
			if err != nil {
				return err
			}
			defer clear(key)
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote master key %s to %s\n", seal.KeyID(key), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to create (must not exist)")
	return cmd
}
