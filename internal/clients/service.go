package clients

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/opensts/sts/internal/audit"
	"github.com/opensts/sts/internal/secret"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Store is the narrow storage view the service needs. In a server it is
// the node's record cache (storage/cache), so a change made here is seen
// by this node's token endpoints at once.
type Store interface {
	storage.ClientStore
	GetOrganization(ctx context.Context, id string) (storage.Organization, error)
	GetPrincipal(ctx context.Context, id string) (storage.Principal, error)
	AppendAudit(ctx context.Context, events ...storage.AuditEvent) error
	storage.UnitOfWork
}

// Audit actions.
const (
	ActionCreate       = "client.create"
	ActionUpdate       = "client.update"
	ActionRotateSecret = "client.rotate_secret"
	ActionDelete       = "client.delete"
)

// Caller is who asks for a change, for the audit trail.
type Caller = audit.Caller

// Service registers and changes clients. Create it with [NewService]; set
// the optional fields before first use. It is safe for concurrent use.
type Service struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives client IDs and digest prefixes, never secrets.
	Logger *slog.Logger
	// CheckJWKSURI, when set, is the rule of the client that fetches a
	// private_key_jwt client's jwks_uri (its CheckURL): a jwks_uri it
	// refuses is refused at create and update, not at the client's first
	// assertion (docs/security.md F-96). nil: the URL's form only.
	CheckJWKSURI func(raw string) error

	store  Store
	pepper atomic.Pointer[[]byte] // nil until SetPepper
}

// NewService returns a service over store whose secret digests are keyed
// by pepper (the server pepper shared with PATs, at least
// secret.MinPepperSize bytes). pepper may be nil when it is not known yet
// (serve starts before storage is reachable); creating a secret client or
// rotating a secret then fails with [sts.Unavailable] until SetPepper.
func NewService(store Store, pepper []byte) (*Service, error) {
	if store == nil {
		return nil, errors.New("clients: nil store")
	}
	s := &Service{store: store}
	if pepper != nil {
		if err := s.SetPepper(pepper); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetPepper supplies the digest pepper; the service copies it.
func (s *Service) SetPepper(pepper []byte) error {
	if len(pepper) < secret.MinPepperSize {
		return errors.New("clients: pepper too short")
	}
	p := append([]byte(nil), pepper...)
	s.pepper.Store(&p)
	return nil
}

var errNotReady = sts.Errorf(sts.Unavailable, "client service is starting; retry shortly")

// newSecret returns a fresh client secret and its digest, or errNotReady.
func (s *Service) newSecret() (string, []byte, error) {
	p := s.pepper.Load()
	if p == nil {
		return "", nil, errNotReady
	}
	sec := secret.PrefixClientSecret.Generate()
	return sec, secret.Digest(*p, sec), nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return storage.Now(s.Now())
	}
	return storage.Now(time.Now())
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// inTx runs fn in one unit of work: its writes and its audit event commit
// together or not at all (docs/design.md#audit). fn's *sts.Error comes
// back as is; any other failure (the commit) is [sts.Unavailable].
func (s *Service) inTx(ctx context.Context, fn func(tx storage.Tx) error) error {
	err := s.store.WithTx(ctx, fn)
	if err != nil {
		if _, ok := errors.AsType[*sts.Error](err); !ok {
			err = sts.Wrap(sts.Unavailable, err, "storage unavailable")
		}
	}
	return err
}

// appendTx appends the success event of a change to client id in tx.
func (s *Service) appendTx(ctx context.Context, tx storage.Tx, c Caller, orgID, action, id, detail string) error {
	if err := tx.AppendAudit(ctx, c.Event(s.now(), orgID, action, "client:"+id, "success", detail)); err != nil {
		return sts.Wrap(sts.Unavailable, err, "storage unavailable")
	}
	return nil
}

// changeAudited updates client id with fn and appends the change's event
// in one unit of work; *out is the stored result.
func (s *Service) changeAudited(ctx context.Context, id, action, detail string, out *storage.Client,
	fn func(storage.Client) (storage.Client, error), c Caller,
) error {
	return s.inTx(ctx, func(tx storage.Tx) error {
		err := tx.UpdateClient(ctx, id, func(cl storage.Client) (storage.Client, error) {
			next, err := fn(cl)
			*out = next
			return next, err
		})
		if err != nil {
			return storageErr(err, "client")
		}
		return s.appendTx(ctx, tx, c, out.OrgID, action, id, detail)
	})
}

// storageErr translates a storage failure into a domain error.
func storageErr(err error, what string) error {
	if e, ok := errors.AsType[*sts.Error](err); ok {
		return e // from an updater
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return sts.Wrap(sts.NotFound, err, what+" not found")
	case errors.Is(err, storage.ErrAlreadyExists):
		return sts.Wrap(sts.AlreadyExists, err, what+" already exists")
	}
	return sts.Wrap(sts.Unavailable, err, "storage unavailable")
}
