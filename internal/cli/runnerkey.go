package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/nacl/box"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/audit"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/hosttoken"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// newRunnerCmd is "sts runner": the X25519 key pair a runner receives its
// host-token values under. keygen runs on the runner; set-key and get-key
// call sts.v1.RunnerKeyService with --server, or act directly in storage
// as an administrator of the runner's organization.
func newRunnerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "runner", Short: "Manage runner public keys (host-token values are sealed to them)"}
	var privFile string
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Create an X25519 key pair: the private key goes to a file (mode 0600), the public key (base64) to stdout",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, priv, err := box.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(privFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("--private-key-file: %w", err)
			}
			_, werr := fmt.Fprintln(f, base64.StdEncoding.EncodeToString(priv[:]))
			if err := errors.Join(werr, f.Close()); err != nil {
				return fmt.Errorf("--private-key-file: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(pub[:]))
			return nil
		},
	}
	keygen.Flags().StringVar(&privFile, "private-key-file", "", "where to write the private key; must not exist (required)")
	_ = keygen.MarkFlagRequired("private-key-file")

	var runnerRef, pubB64 string
	setKey := &cobra.Command{
		Use:     "set-key",
		Short:   "Register or rotate a runner's X25519 public key",
		Example: `  sts runner set-key --runner runner-1 --public-key "$(sts runner keygen --private-key-file runner.key)"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := decodePublicKey(pubB64)
			if err != nil {
				return err
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				p, err := resolvePrincipal(ctx, a, runnerRef, "")
				if err != nil {
					return err
				}
				k, err := a.runnerKeys().set(ctx, p.GetId(), pub)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), []*stsv1.RunnerPublicKey{k}, true)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "runner %s key %s\n", printable(k.GetRunnerId()), printable(k.GetFingerprint()))
				return nil
			})
		},
	}
	setKey.Flags().StringVar(&runnerRef, "runner", "", "runner: principal ID or unique name (required)")
	setKey.Flags().StringVar(&pubB64, "public-key", "", "the 32-byte X25519 public key, base64 (required)")
	_ = setKey.MarkFlagRequired("runner")
	_ = setKey.MarkFlagRequired("public-key")

	var getRef string
	getKey := &cobra.Command{
		Use:   "get-key",
		Short: "Print a runner's registered public key (base64) and its fingerprint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				p, err := resolvePrincipal(ctx, a, getRef, "")
				if err != nil {
					return err
				}
				k, err := a.runnerKeys().get(ctx, p.GetId())
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), []*stsv1.RunnerPublicKey{k}, true)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", base64.StdEncoding.EncodeToString(k.GetPublicKey()),
					printable(k.GetFingerprint()), k.GetUpdatedAt().AsTime().UTC().Format(time.RFC3339))
				return nil
			})
		},
	}
	getKey.Flags().StringVar(&getRef, "runner", "", "runner: principal ID or unique name (required)")
	_ = getKey.MarkFlagRequired("runner")
	cmd.AddCommand(keygen, adminFlags(setKey), adminFlags(getKey))
	return cmd
}

// decodePublicKey parses a base64 (standard or URL alphabet, padded or
// not) 32-byte key.
func decodePublicKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if err := hosttoken.CheckPublicKey(b); err != nil {
				return nil, usageError{err}
			}
			return b, nil
		}
	}
	return nil, usageError{errors.New("--public-key must be base64 of a 32-byte X25519 public key")}
}

// setRunnerKey registers pub for the runner named by ref, audited as the CLI.
func setRunnerKey(ctx context.Context, store *sqlstore.Store, ref string, pub []byte) (storage.RunnerKey, error) {
	p, err := findPrincipal(ctx, store, ref, "")
	if err != nil {
		return storage.RunnerKey{}, err
	}
	c := hosttoken.Caller{OrgID: p.OrgID, Admin: true, Actor: cliCaller.Actor}
	return hosttoken.SetRunnerKey(ctx, store, &audit.Writer{Store: store}, c, p.ID, pub, time.Now())
}

// runnerKeyAdmin registers and reads runner keys, remotely
// (sts.v1.RunnerKeyService) or in the database.
type runnerKeyAdmin interface {
	set(ctx context.Context, runnerID string, pub []byte) (*stsv1.RunnerPublicKey, error)
	get(ctx context.Context, runnerID string) (*stsv1.RunnerPublicKey, error)
}

func (a *admin) runnerKeys() runnerKeyAdmin {
	if a.remote != nil {
		return remoteRunnerKeys{stsv1connect.NewRunnerKeyServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}
	}
	return directRunnerKeys{a.store}
}

type remoteRunnerKeys struct {
	c stsv1connect.RunnerKeyServiceClient
}

func (r remoteRunnerKeys) set(ctx context.Context, runnerID string, pub []byte) (*stsv1.RunnerPublicKey, error) {
	res, err := r.c.SetRunnerPublicKey(ctx, &stsv1.SetRunnerPublicKeyRequest{RunnerId: runnerID, PublicKey: pub})
	return res.GetKey(), err
}

func (r remoteRunnerKeys) get(ctx context.Context, runnerID string) (*stsv1.RunnerPublicKey, error) {
	res, err := r.c.GetRunnerPublicKey(ctx, &stsv1.GetRunnerPublicKeyRequest{RunnerId: runnerID})
	return res.GetKey(), err
}

type directRunnerKeys struct{ s *sqlstore.Store }

func (d directRunnerKeys) set(ctx context.Context, runnerID string, pub []byte) (*stsv1.RunnerPublicKey, error) {
	k, err := setRunnerKey(ctx, d.s, runnerID, pub)
	if err != nil {
		return nil, err
	}
	return runnerKeyProto(k), nil
}

func (d directRunnerKeys) get(ctx context.Context, runnerID string) (*stsv1.RunnerPublicKey, error) {
	p, err := d.s.GetPrincipal(ctx, runnerID)
	if err != nil {
		return nil, notFound(err, "runner")
	}
	k, err := hosttoken.GetRunnerKey(ctx, d.s, hosttoken.Caller{OrgID: p.OrgID, Admin: true, Actor: cliCaller.Actor}, p.ID)
	if err != nil {
		return nil, err
	}
	return runnerKeyProto(k), nil
}

func runnerKeyProto(k storage.RunnerKey) *stsv1.RunnerPublicKey {
	return &stsv1.RunnerPublicKey{RunnerId: k.RunnerID, PublicKey: k.PublicKey, Fingerprint: hosttoken.Fingerprint(k.PublicKey),
		UpdatedAt: timestamppb.New(k.UpdatedAt)}
}
