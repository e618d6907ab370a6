package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/opensts/sts/internal/api"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/pat"
	"github.com/opensts/sts/internal/pools"
	"github.com/opensts/sts/internal/seal"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// PermanentError is a start-up failure that restarting cannot fix: the
// configuration, or what it names (the database, the role), is wrong. The
// command line prints its one-line message and exits 2, like an invalid
// configuration, so a supervisor does not restart-loop on it.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// permanent wraps err in a *PermanentError when retrying cannot fix it
// (sqlstore.Permanent), with a one-line message that names the setting
// to fix; other errors come back unchanged.
func permanent(err error) error {
	if pe := (*PermanentError)(nil); errors.As(err, &pe) {
		// Judged so where it arose: of the *PermanentError producers only
		// tokenEndpoints.mount (a route conflict at Ready) runs in boot's
		// init and so reaches here; the configuration checks
		// (checkDeployment, hostTokenIntegrations) stop New before
		// storage is opened. A new value, so that callers that compare
		// see it is permanent (TestMountConflictIsPermanent).
		return &PermanentError{Err: err}
	}
	if errors.Is(err, sqlstore.ErrSchemaNewer) {
		// An older binary on a newer release's schema: restarting it
		// cannot help (docs/security.md F-85).
		return &PermanentError{Err: fmt.Errorf("storage: %w", err)}
	}
	if err == nil || !sqlstore.Permanent(err) {
		return err
	}
	if errors.Is(err, sqlstore.ErrBadDSN) {
		return &PermanentError{Err: sqlstore.ErrBadDSN}
	}
	return &PermanentError{Err: fmt.Errorf("storage: %s; retrying cannot fix this: check storage.dsn", sqlstore.PermanentReason(err))}
}

// errNeedIssuer refuses a PostgreSQL deployment without an explicit issuer
// (docs/security.md F-32).
var errNeedIssuer = errors.New("issuer: required when storage.type is postgres: every replica must sign and accept the same issuer, and the default (http://<listen>) differs between replicas; set issuer (STS_ISSUER) to the public URL clients use")

// CheckServeConfig reports what sts serve refuses in a configuration that
// config.Load accepts (so that `sts config check` refuses it too), before
// serve writes anything: a pool whose CEL does not compile (a
// *config.Error), a bad host-token integration, PostgreSQL without an
// explicit issuer, a sign-in provider's issuer its client would refuse
// and a malformed STS_MASTER_KEY (each a *PermanentError).
// It reads no secret file: config check shows those by path
// (docs/operations.md "sts config check"), and serve reads them itself.
func CheckServeConfig(cfg config.Config) error {
	if _, err := planTrust(cfg); err != nil {
		return err
	}
	integrations := slices.Clone(cfg.HostTokenIntegrations)
	for i := range integrations {
		integrations[i].ClientSecretFile = ""
	}
	cfg.HostTokenIntegrations = integrations
	if _, err := hostTokenIntegrations(cfg); err != nil {
		return err
	}
	return checkDeployment(cfg)
}

// checkDeployment is the part of CheckServeConfig that serve has not done
// already by planning the trust configuration and loading the
// integrations.
func checkDeployment(cfg config.Config) error {
	if err := checkReplicaIssuer(cfg); err != nil {
		return err
	}
	if err := checkWebIssuers(cfg); err != nil {
		return err
	}
	return checkMasterKey(cfg)
}

// checkMasterKey refuses a master key given by value (STS_MASTER_KEY)
// that LoadConfiguredKey would refuse: not base64, or not 32 bytes. The
// message never quotes the key. Key files are read by serve only:
// config check shows them by path (docs/operations.md "sts config check").
func checkMasterKey(cfg config.Config) error {
	if cfg.MasterKey == "" {
		return nil
	}
	key, err := seal.LoadMasterKey("", cfg.MasterKey.Reveal())
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("master key: %w", err)}
	}
	clear(key)
	return nil
}

// checkReplicaIssuer: with PostgreSQL several replicas may share storage,
// and a token from one is only valid on the others if they agree on the
// issuer. The default, derived from each replica's own listen address,
// cannot be relied on there.
func checkReplicaIssuer(cfg config.Config) error {
	if cfg.Storage.Type == sqlstore.DriverPostgres && cfg.IssuerDerived {
		return &PermanentError{Err: errNeedIssuer}
	}
	return nil
}

// listeners are the sockets sts serve answers on, bound by New before
// anything is written (docs/security.md F-30).
type listeners struct {
	public, ops net.Listener
	// owned are the ones bind opened (not given by Options): closeOwned
	// closes them when New fails.
	owned []net.Listener
}

func (l listeners) closeOwned() {
	for _, ln := range l.owned {
		ln.Close()
	}
}

// bind opens the public listener (unless o gives one) and, when configured,
// the ops listener. On any failure nothing stays open.
func bind(cfg config.Config, o Options) (listeners, error) {
	l := listeners{public: o.Listener, ops: o.OpsListener}
	if l.public == nil {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return l, fmt.Errorf("listen %q: %w", cfg.Listen, err)
		}
		l.public = ln
		l.owned = append(l.owned, ln)
	}
	if l.ops == nil && cfg.Ops.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Ops.Listen)
		if err != nil {
			l.closeOwned()
			return listeners{}, fmt.Errorf("ops.listen %q: %w", cfg.Ops.Listen, err)
		}
		l.ops = ln
		l.owned = append(l.owned, ln)
	}
	return l, nil
}

// localURL is the URL of the bound public listener for a person on this
// machine (https with tls.cert_file).
func (a *App) localURL() string {
	url := LocalURL(a.ln.public.Addr().String())
	if a.cfg.TLS.Enabled() {
		url = "https" + strings.TrimPrefix(url, "http")
	}
	return url
}

// firstConfiguredOrg is the ID of the first organization the configuration
// declares, or "".
func firstConfiguredOrg(cfg config.Config) string {
	if len(cfg.Organizations) == 0 {
		return ""
	}
	return cfg.Organizations[0].ID
}

// bootstrapAdmin: organizations exist (the configuration declared them)
// but no principal does, so nobody could administer them. It creates the
// admin user, an instance administrator, in firstOrg (else the first
// stored organization) and logs how to mint its PAT. bootstrap calls it
// under the bootstrap lock.
func bootstrapAdmin(ctx context.Context, store storage.Store, orgs []storage.Organization, firstOrg string, logger *slog.Logger) error {
	for _, o := range orgs {
		ps, err := store.ListPrincipals(ctx, o.ID)
		if err != nil {
			return err
		}
		if len(ps) > 0 {
			return nil // not a first start
		}
	}
	org := orgs[0]
	for _, o := range orgs {
		if o.ID == firstOrg {
			org = o
		}
	}
	caller := pat.Caller{Actor: "bootstrap"}
	admin, err := api.CreatePrincipal(ctx, store, caller, org.ID, storage.PrincipalUser, "admin", "", time.Now())
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if err := SetInstanceAdmin(ctx, store, caller, admin.ID, true); err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	logger.InfoContext(ctx, "created an admin user in the first configured organization; mint a personal access token with: sts pat create --user admin --org "+org.ID+" --expires-in 30d --scope '*' --scope sts:admin",
		"organization", org.ID, "admin", admin.ID)
	return nil
}

// ConfigTrustStore is a throw-away in-memory store holding only the trust
// configuration of cfg (its organizations, pools and providers), for
// evaluating the file's pools without a server or a migrated database
// (`sts pool test --config`). Close it after use.
func ConfigTrustStore(ctx context.Context, cfg config.Config) (*sqlstore.Store, error) {
	plan, err := planTrust(cfg)
	if err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, sqlstore.Config{Driver: sqlstore.DriverSQLite, DSN: ":memory:"})
	if err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx); err != nil {
		store.Close()
		return nil, err
	}
	if _, err := pools.ApplyConfig(ctx, store, plan, time.Now()); err != nil {
		store.Close()
		return nil, fmt.Errorf("trust configuration: %w", err)
	}
	return store, nil
}
