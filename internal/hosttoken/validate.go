package hosttoken

import (
	"strings"
	"unicode"

	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/sts"
)

// Limits of gitpod.v1.RunnerConfigurationService and our own bounds on stored values.
const (
	MaxScopes       = 100      // gitpod.v1.RunnerConfigurationService: "Maximum 100 scopes allowed"
	MaxScopeLength  = 256      // per scope
	MaxValueLength  = 16 << 10 // token or refresh token, bytes
	MaxHostLength   = 253      // a DNS name (optionally with :port)
	DefaultPageSize = 25
	MaxPageSize     = 100
)

// Field names in messages are the JSON names of gitpod.v1.RunnerConfigurationService, so a caller
// sees which field to fix.

func invalid(format string, args ...any) error { return sts.Errorf(sts.Invalid, format, args...) }

func checkUUID(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return invalid("%s is required", field)
	case v != "" && !storage.IsUUID(v):
		return invalid("%s must be a UUID", field)
	}
	return nil
}

func checkValue(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return invalid("%s is required", field)
	case len(v) > MaxValueLength:
		return invalid("%s must be at most %d bytes", field, MaxValueLength)
	}
	return nil
}

func checkScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return invalid("scopes: at most %d allowed, got %d", MaxScopes, len(scopes))
	}
	for i, sc := range scopes {
		if sc == "" || len(sc) > MaxScopeLength || strings.IndexFunc(sc, unicode.IsControl) >= 0 {
			return invalid("scopes[%d] must be 1 to %d printable bytes", i, MaxScopeLength)
		}
	}
	return nil
}

func checkHost(h string) error {
	if h == "" {
		return invalid("host is required")
	}
	if len(h) > MaxHostLength || strings.IndexFunc(h, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == '/'
	}) >= 0 {
		return invalid("host must be a host name of at most %d bytes without spaces or slashes", MaxHostLength)
	}
	return nil
}

func checkSource(src storage.HostTokenSource) error {
	switch src {
	case "", storage.HostTokenSourceOAuth, storage.HostTokenSourcePAT:
		return nil
	}
	return invalid("source must be a HOST_AUTHENTICATION_TOKEN_SOURCE_* value")
}

// resolveSubject merges subject and the deprecated userId (a user subject).
func resolveSubject(sub Subject, userID string) (Subject, error) {
	if err := checkUUID("subject.id", sub.ID, false); err != nil {
		return sub, err
	}
	if err := checkUUID("userId", userID, false); err != nil {
		return sub, err
	}
	if sub.Kind != "" && !sub.Kind.Valid() {
		return sub, invalid("subject.principal must be a PRINCIPAL_* value")
	}
	switch {
	case userID == "":
	case sub.ID == "":
		sub = Subject{ID: userID, Kind: storage.PrincipalUser}
	case !strings.EqualFold(sub.ID, userID):
		return sub, invalid("userId and subject.id name different principals")
	}
	if sub.ID == "" && sub.Kind != "" {
		return sub, invalid("subject.id is required when subject.principal is set")
	}
	sub.ID = strings.ToLower(sub.ID)
	return sub, nil
}
