package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/api"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/tokens"
)

func clientRotateCmd() *cobra.Command {
	return &cobra.Command{Use: "rotate-secret ID", Short: "Replace a client's secret; the new one is printed once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				cs, err := a.clients(ctx)
				if err != nil {
					return err
				}
				// One update: the old secret stops working at the same
				// commit (docs/security.md D-03).
				c, sec, err := cs.rotateSecret(ctx, args[0])
				if err != nil {
					return err
				}
				return printSecret(cmd, c, false, sec, "new secret of client "+printable(c.GetId())+": shown once; the previous secret no longer works")
			})
		}}
}

// clientEnableCmd is `sts client disable ID` or, with enable, `sts client
// enable ID`.
func clientEnableCmd(enable bool) *cobra.Command {
	use, short := "disable ID", "Disable a client and the access tokens issued to it (at once here; running servers within 5 s)"
	if enable {
		use, short = "enable ID", "Re-enable a disabled client"
	}
	return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			disabled := !enable
			return updateClient(cmd, &stsv1.UpdateClientRequest{ClientId: args[0], Disabled: &disabled})
		}}
}

// updateClient sends req and prints the client: JSON, or a line of text.
func updateClient(cmd *cobra.Command, req *stsv1.UpdateClientRequest) error {
	return runAdmin(cmd, func(ctx context.Context, a *admin) error {
		cs, err := a.clients(ctx)
		if err != nil {
			return err
		}
		c, err := cs.update(ctx, req)
		if err != nil {
			return err
		}
		if j, _ := outputJSON(cmd); j {
			return printObjects(cmd.OutOrStdout(), []*stsv1.Client{c}, true)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "updated client %s\n", printable(c.GetId()))
		return nil
	})
}

// clientUpdateCmd is `sts client update ID`: the flags given replace the
// client's values (a list flag given empty, e.g. --scope=, clears it);
// the others stay.
func clientUpdateCmd() *cobra.Command {
	var name, jwksFile, jwksURI string
	var grants, pools, auds, scopes, redirects []string
	var requirePKCE bool
	cmd := &cobra.Command{Use: "update ID", Short: "Change a client's name, grant types, pools, audiences, scopes, redirect URIs, PKCE requirement or keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := cmd.Flags().Changed
			req := &stsv1.UpdateClientRequest{ClientId: args[0]}
			if set("name") {
				req.Name = &name
			}
			list := func(flag string, v []string) *stsv1.StringList {
				if set(flag) {
					return &stsv1.StringList{Values: v}
				}
				return nil
			}
			req.GrantTypes, req.Pools, req.Audiences, req.Scopes = list("grant-type", grants), list("pool", pools), list("audience", auds), list("scope", scopes)
			req.RedirectUris = list("redirect-uri", redirects)
			if set("require-pkce") {
				req.RequirePkce = &requirePKCE
			}
			switch {
			case set("jwks-file") && set("jwks-uri"):
				return usageError{errors.New("give one of --jwks-file and --jwks-uri")}
			case set("jwks-file"):
				b, err := readJWKSFile(jwksFile)
				if err != nil {
					return err
				}
				req.Keys = &stsv1.UpdateClientRequest_Jwks{Jwks: string(b)}
			case set("jwks-uri"):
				req.Keys = &stsv1.UpdateClientRequest_JwksUri{JwksUri: jwksURI}
			}
			return updateClient(cmd, req)
		}}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "display name")
	f.StringVar(&jwksFile, "jwks-file", "", "new public JWKS (private_key_jwt; replaces the JWKS URI)")
	f.StringVar(&jwksURI, "jwks-uri", "", "new JWKS URI (private_key_jwt; replaces the JWKS)")
	f.StringSliceVar(&grants, "grant-type", nil, "grant types the client may use (repeatable; replaces)")
	f.StringSliceVar(&pools, "pool", nil, "pools the client may exchange against (repeatable; replaces)")
	f.StringSliceVar(&auds, "audience", nil, "audiences the client may obtain (repeatable; replaces)")
	scopesVar(f, &scopes, "scope", "scopes the client may obtain (repeatable; replaces)")
	f.StringSliceVar(&redirects, "redirect-uri", nil, "exact redirect URIs of the authorization_code grant (repeatable; replaces)")
	f.BoolVar(&requirePKCE, "require-pkce", true, requirePKCEUsage)
	return cmd
}

func clientDeleteCmd() *cobra.Command {
	return &cobra.Command{Use: "delete ID", Short: "Delete a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				cs, err := a.clients(ctx)
				if err != nil {
					return err
				}
				if err := cs.delete(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "deleted client %s\n", args[0])
				return nil
			})
		}}
}

// newRevokeCmd is `sts revoke subject --subject S --before T`: every token
// of S issued at or before T stops verifying at once (docs/security.md D-04, "revoke-all-issued-before-T").
func newRevokeCmd() *cobra.Command {
	cmd := adminNoun(&cobra.Command{Use: "revoke", Short: "Revoke tokens"})
	var subject, before string
	var keep time.Duration
	sub := &cobra.Command{Use: "subject --subject SUB [--before TIME]", Short: "Revoke every token of a subject issued before a time (instance administrators)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if subject == "" {
				return usageError{errors.New("--subject is required")}
			}
			t := time.Now()
			if before != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, before); err != nil {
					return usageError{fmt.Errorf("--before: want an RFC 3339 time: %w", err)}
				}
			}
			return runAdmin(cmd, func(ctx context.Context, a *admin) error {
				res, err := a.revocations().revokeSubject(ctx, subject, t, keep)
				if err != nil {
					return err
				}
				if j, _ := outputJSON(cmd); j {
					return printObjects(cmd.OutOrStdout(), []*stsv1.RevokeSubjectResponse{res}, true)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "revoked tokens of %s issued at or before %s\n", subject, res.GetIssuedBefore().AsTime().UTC().Format(time.RFC3339))
				return nil
			})
		}}
	sub.Flags().StringVar(&subject, "subject", "", "the sub of the tokens (required)")
	sub.Flags().StringVar(&before, "before", "", "RFC 3339 time; default now")
	durationVar(sub.Flags(), &keep, "keep", 0, "how long the revocation is kept, ≥ the longest token lifetime (0: keys.max_token_lifetime plus the leeway)")
	cmd.AddCommand(sub)
	return cmd
}

// revocationAdmin revokes by subject, remotely (sts.v1.RevocationService)
// or in the database; both through api.RevokeSubject.
type revocationAdmin interface {
	revokeSubject(ctx context.Context, subject string, before time.Time, keep time.Duration) (*stsv1.RevokeSubjectResponse, error)
}

func (a *admin) revocations() revocationAdmin {
	if a.remote != nil {
		return remoteRevocations{stsv1connect.NewRevocationServiceClient(a.remote.http, a.remote.base, a.remote.opts()...)}
	}
	return directRevocations{a.store, a.cfg.Keys.RevocationKeep()}
}

type remoteRevocations struct {
	c stsv1connect.RevocationServiceClient
}

func (r remoteRevocations) revokeSubject(ctx context.Context, subject string, before time.Time, keep time.Duration) (*stsv1.RevokeSubjectResponse, error) {
	req := &stsv1.RevokeSubjectRequest{Subject: subject, IssuedBefore: timestamppb.New(before)}
	if keep != 0 {
		req.Keep = durationpb.New(keep) // else the server's default, from its configuration
	}
	return r.c.RevokeSubject(ctx, req)
}

// directRevocations revokes in the database; defaultKeep is the
// configuration's (config.KeysConfig.RevocationKeep).
type directRevocations struct {
	s           *sqlstore.Store
	defaultKeep time.Duration
}

func (d directRevocations) revokeSubject(ctx context.Context, subject string, before time.Time, keep time.Duration) (*stsv1.RevokeSubjectResponse, error) {
	if keep == 0 {
		keep = tokens.RevocationKeep(d.defaultKeep)
	}
	now := time.Now()
	subject, err := api.SubjectNamed(ctx, d.s, subject) // as the API does (docs/security.md T-210)
	if err != nil {
		return nil, err
	}
	n, err := api.RevokeSubject(ctx, d.s, subject, before, keep, now, "cli revoke subject")
	if err != nil {
		return nil, err
	}
	if err := d.s.AppendAudit(ctx, cliCaller.Event(now, api.SubjectOrg(ctx, d.s, subject), api.ActionSubjectRevoke, "subject:"+subject, "success", "")); err != nil {
		return nil, fmt.Errorf("tokens of %s revoked, but the audit event was not stored: %w", subject, err)
	}
	return &stsv1.RevokeSubjectResponse{IssuedBefore: timestamppb.New(before), ExpiresAt: timestamppb.New(before.Add(keep)), RefreshTokensRevoked: n}, nil
}

// revokeSubject is the direct mode's revocation of subject.
func revokeSubject(ctx context.Context, store api.SubjectRevoker, subject string, before time.Time, keep time.Duration, now time.Time) error {
	_, err := api.RevokeSubject(ctx, store, subject, before, keep, now, "cli revoke subject")
	return err
}
