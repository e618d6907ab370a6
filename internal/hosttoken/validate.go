package hosttoken

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

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
	// The message never repeats the host: one with a user in it may
	// carry a password (docs/security.md T-229).
	if _, ok := hostKey(h); !ok {
		return invalid("host must be a host name (an internationalized one in either form), an IPv4 address or an IPv6 address in brackets, "+
			"with an optional :port, of at most %d bytes: no scheme, user, password, path or query", MaxHostLength)
	}
	return nil
}

// hostKey is the form a host token's host is compared in, and ok is
// false for anything that is not a host: a host name in lower case and
// in its ASCII form (a name that is not ASCII is converted as an HTTP
// client converts it before resolving it: IDNA, Unicode TS 46 nontransitional,
// Go's net/http and curl alike), an IPv4 address, or an IPv6 address in
// brackets in its canonical form; then the port, if any, without leading
// zeros. A URL's other parts (a scheme, a user and password, a path, a
// query, a fragment) are not a host (docs/security.md T-229).
func hostKey(h string) (key string, ok bool) {
	if h == "" || len(h) > MaxHostLength {
		return "", false
	}
	name, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		a, err := netip.ParseAddr(h[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		name, port = "["+a.String()+"]", h[end+1:]
		if port != "" && port[0] != ':' {
			return "", false
		}
	} else {
		if i := strings.LastIndexByte(h, ':'); i >= 0 {
			name, port = h[:i], h[i:]
		}
		if name, ok = hostName(name); !ok {
			return "", false
		}
	}
	if port != "" {
		n, err := strconv.ParseUint(port[1:], 10, 16)
		if err != nil || n == 0 || port[1] == '+' {
			return "", false
		}
		port = ":" + strconv.FormatUint(n, 10)
	}
	return name + port, true
}

// hostName is hostKey for a name without a port: its labels in ASCII
// (a label that is not, through IDNA) and lower case, each of letters,
// digits, '-' and '_', an "xn--" label valid Punycode; a final dot stays.
func hostName(n string) (string, bool) {
	if n == "" {
		return "", false
	}
	for i := 0; i < len(n); i++ {
		if n[i] >= utf8.RuneSelf {
			a, err := idna.Lookup.ToASCII(n)
			if err != nil {
				return "", false
			}
			n = a
			break
		}
	}
	n = strings.ToLower(n)
	labels := strings.Split(strings.TrimSuffix(n, "."), ".")
	for _, l := range labels {
		if l == "" || strings.IndexFunc(l, func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_'
		}) >= 0 {
			return "", false
		}
		if strings.HasPrefix(l, "xn--") {
			if _, err := idna.Lookup.ToUnicode(l); err != nil {
				return "", false
			}
		}
	}
	return n, true
}

func checkSource(src storage.HostTokenSource) error {
	switch src {
	case "", storage.HostTokenSourceOAuth, storage.HostTokenSourcePAT:
		return nil
	}
	return invalid("source must be a HOST_AUTHENTICATION_TOKEN_SOURCE_* value")
}

// resolveSubject merges subject and the deprecated userId (a user subject).
// subjectField and userField are the JSON paths of the two in the request
// (subject.id and userId on create, filter.subjectId and filter.userId on
// list), so a refusal names the field the caller sent (docs/security.md
// F-114).
func resolveSubject(sub Subject, userID, subjectField, userField string) (Subject, error) {
	if err := checkUUID(subjectField, sub.ID, false); err != nil {
		return sub, err
	}
	if err := checkUUID(userField, userID, false); err != nil {
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
		return sub, invalid("%s and %s name different principals", userField, subjectField)
	}
	if sub.ID == "" && sub.Kind != "" {
		return sub, invalid("subject.id is required when subject.principal is set")
	}
	sub.ID = strings.ToLower(sub.ID)
	return sub, nil
}
