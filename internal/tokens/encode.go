package tokens

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/opensts/sts/internal/oauth2"
)

// marshalAccess is json.Marshal(c), byte for byte
// (TestMarshalAccessMatchesEncodingJSON), written directly into one
// buffer: encoding/json walked the struct by reflection for every token
// (docs/performance.md, "What the remaining cost is"). Claims with an act,
// may_act or cab claim, or an attribute that is not a string, go through
// json.Marshal.
func marshalAccess(c *AccessClaims) ([]byte, error) {
	if c.Act != nil || c.MayAct != nil || c.CAB != nil || len(c.Audience) == 0 || !stringValues(c.Attributes) {
		// A copy for encoding/json, which keeps what it is given: handing
		// it c would move every caller's claims to the heap, on the hand-
		// written path too (docs/performance.md, client_credentials
		// seventh pass).
		cp := *c
		return json.Marshal(&cp)
	}
	n := 192 + len(c.Issuer) + len(c.Subject) + len(c.ID) + len(c.ClientID) + len(c.Scope) + len(c.OrgID) +
		len(c.Principal) + len(c.Pool) + len(c.Provider) + len(c.PATID) + len(c.PATGeneration) + len(c.GrantID)
	for _, a := range c.Audience {
		n += len(a) + 3
	}
	for _, j := range c.SourceJTIs {
		n += len(j) + 3
	}
	for _, l := range [...][]string{c.SourceClientIDs, c.SourceSubjects, c.SourcePATs, c.SourcePools, c.SourceGrants, c.SourceKeyIDs} {
		for _, v := range l {
			n += len(v) + 3
		}
	}
	for k, v := range c.Attributes {
		n += len(k) + len(v.(string)) + 6
	}
	if c.Src != nil {
		n += len(c.Src.Issuer) + len(c.Src.Subject)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"iss":`...)
	b = oauth2.AppendJSONString(b, c.Issuer)
	b = append(b, `,"sub":`...)
	b = oauth2.AppendJSONString(b, c.Subject)
	if len(c.Audience) == 1 {
		b = oauth2.AppendJSONString(append(b, `,"aud":`...), c.Audience[0])
	} else {
		b = appendStrings(b, `,"aud":`, c.Audience) // never empty here
	}
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, int64(c.Expiry), 10)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, int64(c.IssuedAt), 10)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, int64(c.NotBefore), 10)
	b = append(b, `,"jti":`...)
	b = oauth2.AppendJSONString(b, c.ID)
	b = append(b, `,"client_id":`...)
	b = oauth2.AppendJSONString(b, c.ClientID)
	b = appendOmitEmpty(b, `,"scope":`, c.Scope)
	b = append(b, `,"org_id":`...)
	b = oauth2.AppendJSONString(b, c.OrgID)
	b = appendOmitEmpty(b, `,"principal":`, c.Principal)
	b = appendOmitEmpty(b, `,"pool":`, c.Pool)
	b = appendOmitEmpty(b, `,"provider":`, c.Provider)
	if len(c.Attributes) > 0 {
		// encoding/json writes a map's keys sorted.
		keys := make([]string, 0, len(c.Attributes))
		for k := range c.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"attributes":`...)
		for i, k := range keys {
			if i == 0 {
				b = append(b, '{')
			} else {
				b = append(b, ',')
			}
			b = oauth2.AppendJSONString(b, k)
			b = append(b, ':')
			b = oauth2.AppendJSONString(b, c.Attributes[k].(string))
		}
		b = append(b, '}')
	}
	if c.Src != nil {
		b = append(b, `,"src":{"iss":`...)
		b = oauth2.AppendJSONString(b, c.Src.Issuer)
		b = append(b, `,"sub":`...)
		b = oauth2.AppendJSONString(b, c.Src.Subject)
		b = append(b, '}')
	}
	b = appendOmitEmpty(b, `,"pat_id":`, c.PATID)
	b = appendOmitEmpty(b, `,"pat_gen":`, c.PATGeneration)
	b = appendOmitEmpty(b, `,"grant_id":`, c.GrantID)
	b = appendStrings(b, `,"src_jti":`, c.SourceJTIs)
	b = appendStrings(b, `,"src_client_id":`, c.SourceClientIDs)
	b = appendStrings(b, `,"src_sub":`, c.SourceSubjects)
	b = appendStrings(b, `,"src_pat":`, c.SourcePATs)
	b = appendStrings(b, `,"src_pool":`, c.SourcePools)
	b = appendStrings(b, `,"src_grant":`, c.SourceGrants)
	b = appendStrings(b, `,"src_kid":`, c.SourceKeyIDs)
	return append(b, '}'), nil
}

// stringValues reports whether every value of m is a string (true for an
// empty or nil m).
func stringValues(m map[string]any) bool {
	for _, v := range m {
		if _, ok := v.(string); !ok {
			return false
		}
	}
	return true
}

// appendOmitEmpty appends key and v unless v is empty (omitempty).
func appendOmitEmpty(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return oauth2.AppendJSONString(append(b, key...), v)
}

// appendStrings appends key and the array l unless l is empty (omitempty).
func appendStrings(b []byte, key string, l []string) []byte {
	if len(l) == 0 {
		return b
	}
	b = append(b, key...)
	for i, v := range l {
		if i == 0 {
			b = append(b, '[')
		} else {
			b = append(b, ',')
		}
		b = oauth2.AppendJSONString(b, v)
	}
	return append(b, ']')
}
