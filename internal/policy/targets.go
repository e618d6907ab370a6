package policy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// MaxTargets and MaxTargetLength bound a token request's targets: at most
// MaxTargets audience and resource values together, each at most
// MaxTargetLength bytes.
const (
	MaxTargets      = 10
	MaxTargetLength = 512
)

// ErrTargetInvalid is the cause [Targets] returns: a malformed audience or
// resource, or too many of them (the token endpoint's invalid_target,
// reason target_invalid).
var ErrTargetInvalid = errors.New("malformed audience or resource")

// Targets validates a token request's audience values (any printable
// logical name) and resource values (an absolute URI without fragment,
// RFC 8707 §2), drops empty ones and duplicates, and refuses more than
// MaxTargets in all. The token endpoint and the pool dry run both call it,
// so the dry run refuses what the exchange refuses (docs/security.md
// F-101).
func Targets(audiences, resources []string) (aud, res []string, err error) {
	if aud, err = TargetList(audiences, false); err != nil {
		return nil, nil, err
	}
	if res, err = TargetList(resources, true); err != nil {
		return nil, nil, err
	}
	if len(aud)+len(res) > MaxTargets {
		return nil, nil, fmt.Errorf("%w: too many audience and resource values", ErrTargetInvalid)
	}
	return aud, res, nil
}

// TargetList is one list of [Targets]: audience values, or with resource
// resource values, without the bound on their number.
func TargetList(vals []string, resource bool) ([]string, error) {
	var out []string
	for _, s := range vals {
		if s == "" {
			continue
		}
		bad := len(s) > MaxTargetLength || !Printable(s)
		if resource && !bad {
			u, err := url.Parse(s)
			bad = err != nil || !u.IsAbs() || u.Fragment != ""
		}
		if bad {
			return nil, ErrTargetInvalid
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Printable reports whether s is visible ASCII only (%x21-7E), the
// characters a target, and the token endpoint's scope, may hold.
func Printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// ParseResourceName splits a provider resource name, as Google-style
// clients send it in audience (docs/design.md#the-model), into pool and
// provider IDs. It accepts exactly ours, "//<host>/pools/<pool>/providers/<provider>"
// or bare "pools/<pool>/providers/<provider>", and Google's two full
// resource names, as Google STS takes them (never relative, under
// Google's IAM host, a workload pool under a project number):
// "//iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
// and "//iam.googleapis.com/locations/global/workforcePools/<pool>/providers/<provider>".
// Anything else is refused, whatever it ends with: a name is either one of
// these or no provider's (docs/security.md T-117, T-130). The host of our
// own form is not compared: clients reach us under many names, and the
// pool and provider IDs are what select the trust policy; Google's names
// name Google's IAM resources, whichever server is asked.
func ParseResourceName(name string) (pool, provider string, ok bool) {
	rest, full := strings.CutPrefix(name, "//")
	host := ""
	if full {
		i := strings.IndexByte(rest, '/')
		if i <= 0 {
			return "", "", false
		}
		host, rest = rest[:i], rest[i+1:]
	}
	p := strings.Split(rest, "/")
	switch {
	case len(p) == 4 && p[0] == "pools":
	case host == googleIAMHost && len(p) == 8 && p[0] == "projects" && projectNumber(p[1]) && p[2] == "locations" && p[3] == "global" && p[4] == "workloadIdentityPools":
	// Workforce pools (Google's pools of people) map onto pools exactly
	// as workload identity pools do.
	case host == googleIAMHost && len(p) == 6 && p[0] == "locations" && p[1] == "global" && p[2] == "workforcePools":
	default:
		return "", "", false
	}
	n := len(p)
	pool, provider = p[n-3], p[n-1]
	if p[n-2] != "providers" || !ValidID(pool) || !ValidID(provider) {
		return "", "", false
	}
	return pool, provider, true
}

// googleIAMHost is the service name of Google's IAM resource names.
const googleIAMHost = "iam.googleapis.com"

// projectNumber reports whether s is a Google project number: decimal
// digits (at most 19), as Google STS requires in a workload pool's
// name (a project ID is refused there).
func projectNumber(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ValidID reports whether s can name a pool or provider in a request: it
// bounds IDs taken from requests before they are used as map keys or
// logged.
func ValidID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
