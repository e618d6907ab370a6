package api

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// wireFields decodes one protobuf message into its fields by number, as
// raw values: varints as uint64, length-delimited as []byte.
func wireFields(t *testing.T, b []byte) map[protowire.Number][]any {
	t.Helper()
	out := map[protowire.Number][]any{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				t.Fatal(protowire.ParseError(n))
			}
			out[num], b = append(out[num], v), b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				t.Fatal(protowire.ParseError(n))
			}
			out[num], b = append(out[num], v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				t.Fatal(protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return out
}

func wireString(f map[protowire.Number][]any, n protowire.Number) string {
	if v, ok := f[n]; ok {
		if b, ok := v[len(v)-1].([]byte); ok {
			return string(b)
		}
	}
	return ""
}

// protoPost sends body as a Connect unary request with the binary codec,
// exactly the bytes a client generated from Gitpod's own .proto sends.
func protoPost(t *testing.T, e *env, proc, token string, body []byte) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+proc, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d %s", proc, res.StatusCode, b)
	}
	return b
}

// TestGitpodBinaryBytes speaks binary protobuf built by hand from Gitpod's
// field numbers (testdata/gitpod-wire.txt), independent of our generated
// code: what Gitpod's own clients send and expect. With sts's old numbers
// these were the failures seen in the field: the identity response did not
// parse, a create request lost its description and lifetime, and the list
// ignored the page size, so a client following next_token never ended.
func TestGitpodBinaryBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	// GetAuthenticatedIdentityResponse: subject 1 {id 1, principal 2},
	// organization_id 2, organization_tier 3.
	id := wireFields(t, protoPost(t, e, "/gitpod.v1.IdentityService/GetAuthenticatedIdentity", e.secret, nil))
	sb, _ := id[1][0].([]byte)
	sub := wireFields(t, sb)
	if wireString(sub, 1) != e.user.ID || sub[2][0] != uint64(2) || wireString(id, 2) != e.org.ID || wireString(id, 3) != "enterprise" {
		t.Errorf("GetAuthenticatedIdentityResponse fields = %v (subject %v)", id, sub)
	}

	// CreatePersonalAccessTokenRequest: description 2, valid_for 3
	// {seconds 1}, read_only 4. Response: token 1.
	var dur, req []byte
	dur = protowire.AppendTag(dur, 1, protowire.VarintType)
	dur = protowire.AppendVarint(dur, 3*24*3600)
	req = protowire.AppendTag(req, 2, protowire.BytesType)
	req = protowire.AppendString(req, "from a gitpod client")
	req = protowire.AppendTag(req, 3, protowire.BytesType)
	req = protowire.AppendBytes(req, dur)
	req = protowire.AppendTag(req, 4, protowire.VarintType)
	req = protowire.AppendVarint(req, 1)
	cr := wireFields(t, protoPost(t, e, "/gitpod.v1.UserService/CreatePersonalAccessToken", e.secret, req))
	if !strings.HasPrefix(wireString(cr, 1), "sts_pat_") {
		t.Fatalf("CreatePersonalAccessTokenResponse fields = %v", cr)
	}

	// ListPersonalAccessTokensRequest: pagination 1 {page_size 1, token 2}.
	// Response: pagination 1 {next_token 1}, personal_access_tokens 2
	// {id 1, description 3, read_only 8}.
	seen, readOnly, tok := map[string]bool{}, 0, ""
	pages := 0
	for pages = 1; pages <= 10; pages++ {
		var pg, lr []byte
		pg = protowire.AppendTag(pg, 1, protowire.VarintType)
		pg = protowire.AppendVarint(pg, 1)
		if tok != "" {
			pg = protowire.AppendTag(pg, 2, protowire.BytesType)
			pg = protowire.AppendString(pg, tok)
		}
		lr = protowire.AppendTag(lr, 1, protowire.BytesType)
		lr = protowire.AppendBytes(lr, pg)
		res := wireFields(t, protoPost(t, e, "/gitpod.v1.UserService/ListPersonalAccessTokens", e.secret, lr))
		if len(res[2]) != 1 {
			t.Fatalf("page %d holds %d tokens, want 1", pages, len(res[2]))
		}
		p := wireFields(t, res[2][0].([]byte))
		seen[wireString(p, 1)] = true
		if wireString(p, 3) == "from a gitpod client" && len(p[8]) == 1 && p[8][0] == uint64(1) {
			readOnly++
		}
		var pr []byte
		if v, ok := res[1]; ok {
			pr = v[0].([]byte)
		}
		if tok = wireString(wireFields(t, pr), 1); tok == "" {
			break
		}
	}
	if len(seen) != 2 || pages != 2 || readOnly != 1 {
		t.Errorf("%d tokens in %d pages, %d read-only from the gitpod client; want 2, 2, 1", len(seen), pages, readOnly)
	}
}
