package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/opensts/sts/internal/gen/gitpod/v1" // registers the gitpod.v1 descriptors
)

// wireRef is Gitpod's published gitpod.v1 wire contract, parsed from
// testdata/gitpod-wire.txt.
type wireRef struct {
	rpcs     []refRPC
	messages map[string][]refField
	enums    map[string]map[int32]string
	order    []string // message and enum names in file order
}

type refRPC struct{ service, method, in, out string }

type refField struct {
	number           int32
	name, label, typ string
	jsonName, oneof  string
}

func loadWireRef(t *testing.T) wireRef {
	t.Helper()
	f, err := os.Open("testdata/gitpod-wire.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref := wireRef{messages: map[string][]refField{}, enums: map[string]map[int32]string{}}
	var msg, enum string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		w := strings.Fields(text)
		bad := func() { t.Fatalf("testdata/gitpod-wire.txt:%d: cannot parse %q", line, text) }
		switch {
		case w[0] == "rpc":
			if len(w) != 5 || w[3] != "->" {
				bad()
			}
			svc, m, ok := strings.Cut(w[1], "/")
			if !ok {
				bad()
			}
			ref.rpcs = append(ref.rpcs, refRPC{svc, m, w[2], w[4]})
		case w[0] == "message" && len(w) == 2:
			msg, enum = w[1], ""
			ref.messages[msg] = []refField{}
			ref.order = append(ref.order, msg)
		case w[0] == "enum" && len(w) == 2:
			msg, enum = "", w[1]
			ref.enums[enum] = map[int32]string{}
			ref.order = append(ref.order, enum)
		case strings.HasPrefix(text, "  ") && enum != "" && len(w) == 2:
			n, err := strconv.ParseInt(w[0], 10, 32)
			if err != nil {
				bad()
			}
			ref.enums[enum][int32(n)] = w[1]
		case strings.HasPrefix(text, "  ") && msg != "":
			n, err := strconv.ParseInt(w[0], 10, 32)
			if err != nil || len(w) < 4 {
				bad()
			}
			fd := refField{number: int32(n), name: w[1]}
			rest := w[2:]
			if rest[0] == "repeated" || rest[0] == "optional" {
				fd.label, rest = rest[0], rest[1:]
			}
			fd.typ, rest = rest[0], rest[1:]
			for _, kv := range rest {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "json":
					fd.jsonName = v
				case "oneof":
					fd.oneof = v
				default:
					bad()
				}
			}
			ref.messages[msg] = append(ref.messages[msg], fd)
		default:
			bad()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(ref.rpcs) == 0 || len(ref.messages) == 0 {
		t.Fatal("testdata/gitpod-wire.txt: no rpcs or messages")
	}
	return ref
}

// fieldLabel is a field's label as the contract writes it: repeated, or
// optional for a proto3 optional scalar (a message field has presence
// whatever its keyword, and the keyword changes neither the wire nor the
// JSON form), else "".
func fieldLabel(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsList():
		return "repeated"
	case fd.HasOptionalKeyword() && fd.Message() == nil:
		return "optional"
	}
	return ""
}

// fieldType is a field's type as the contract writes it: the scalar kind
// or the full name of the message or enum.
func fieldType(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.Message() != nil:
		return string(fd.Message().FullName())
	case fd.Enum() != nil:
		return string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

// sharedNumberLimit: below it, every field of a contract message must be
// one the contract defines; sts's own fields use this and up.
const sharedNumberLimit = 100

// TestGitpodWireContract compares every message, enum and RPC of Gitpod's
// published contract with our generated descriptors: same field numbers,
// names, types, labels, oneofs and JSON names, no field of our own below
// 100, the same RPC signatures. A mismatch here is what makes Gitpod's own
// binary (Connect+proto, gRPC) clients fail against sts while JSON works.
func TestGitpodWireContract(t *testing.T) {
	t.Parallel()
	ref := loadWireRef(t)
	for _, name := range ref.order {
		if want, ok := ref.enums[name]; ok {
			t.Run("enum/"+name, func(t *testing.T) {
				d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
				ed, _ := d.(protoreflect.EnumDescriptor)
				if err != nil || ed == nil {
					t.Fatalf("enum %s not defined", name)
				}
				for n, v := range want {
					if got := ed.Values().ByNumber(protoreflect.EnumNumber(n)); got == nil || string(got.Name()) != v {
						t.Errorf("value %d: want %s, have %v", n, v, got)
					}
				}
			})
			continue
		}
		want := ref.messages[name]
		t.Run("message/"+name, func(t *testing.T) {
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
			md, _ := d.(protoreflect.MessageDescriptor)
			if err != nil || md == nil {
				t.Fatalf("message %s not defined", name)
			}
			defined := map[int32]bool{}
			for _, rf := range want {
				defined[rf.number] = true
				fd := md.Fields().ByNumber(protoreflect.FieldNumber(rf.number))
				if fd == nil {
					t.Errorf("field %d (%s) missing", rf.number, rf.name)
					continue
				}
				oneof := ""
				if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
					oneof = string(o.Name())
				}
				got := refField{number: rf.number, name: string(fd.Name()), label: fieldLabel(fd), typ: fieldType(fd), jsonName: fd.JSONName(), oneof: oneof}
				if got != rf {
					t.Errorf("field %d: have %+v, want %+v", rf.number, got, rf)
				}
			}
			for i := range md.Fields().Len() {
				fd := md.Fields().Get(i)
				if n := int32(fd.Number()); n < sharedNumberLimit && !defined[n] {
					t.Errorf("field %d (%s) is ours but below %d: it can collide with an upstream field", n, fd.Name(), sharedNumberLimit)
				}
			}
		})
	}
	for _, r := range ref.rpcs {
		t.Run("rpc/"+r.service+"/"+r.method, func(t *testing.T) {
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(r.service))
			sd, _ := d.(protoreflect.ServiceDescriptor)
			if err != nil || sd == nil {
				t.Fatalf("service %s not defined", r.service)
			}
			m := sd.Methods().ByName(protoreflect.Name(r.method))
			if m == nil {
				t.Fatalf("method %s not defined", r.method)
			}
			if in, out := string(m.Input().FullName()), string(m.Output().FullName()); in != r.in || out != r.out {
				t.Errorf("signature %s -> %s, want %s -> %s", in, out, r.in, r.out)
			}
			if m.IsStreamingClient() || m.IsStreamingServer() {
				t.Error("streaming; the contract's RPCs are unary")
			}
			// Idempotency decides whether Gitpod's clients may send the
			// call as HTTP GET; a call they send as GET that we take only
			// by POST fails with 405.
			opts, _ := m.Options().(*descriptorpb.MethodOptions)
			free := opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
			if want := gitpodSideEffectFree[r.service+"/"+r.method]; free != want {
				t.Errorf("side-effect free (idempotency_level NO_SIDE_EFFECTS) = %v, Gitpod's descriptor says %v", free, want)
			}
		})
	}
}

// gitpodSideEffectFree are the contract RPCs Gitpod's own descriptors
// (gitpod-io/terraform-provider-ona, internal/api/go/v1, the same sync as
// testdata/gitpod-wire.txt) mark idempotency_level NO_SIDE_EFFECTS; the
// contract file records fields and signatures, not method options.
var gitpodSideEffectFree = map[string]bool{
	"gitpod.v1.IdentityService/GetAuthenticatedIdentity":                 true,
	"gitpod.v1.UserService/GetAuthenticatedUser":                         true,
	"gitpod.v1.UserService/GetUser":                                      true,
	"gitpod.v1.UserService/GetPersonalAccessToken":                       true,
	"gitpod.v1.UserService/ListPersonalAccessTokens":                     true,
	"gitpod.v1.UserService/GetPreference":                                true,
	"gitpod.v1.UserService/ListPreferences":                              true,
	"gitpod.v1.UserService/GetDotfilesConfiguration":                     true,
	"gitpod.v1.RunnerConfigurationService/GetHostAuthenticationToken":    true,
	"gitpod.v1.RunnerConfigurationService/ListHostAuthenticationTokens":  true,
	"gitpod.v1.RunnerInteractionService/GetHostAuthenticationTokenValue": true,
}

// unimplementedOnPurpose are the contract RPCs sts does not serve: each
// answers unimplemented and docs/api.md lists it.
var unimplementedOnPurpose = map[string]bool{
	"gitpod.v1.UserService/SetPreference":            true,
	"gitpod.v1.UserService/GetPreference":            true,
	"gitpod.v1.UserService/ListPreferences":          true,
	"gitpod.v1.UserService/DeletePreference":         true,
	"gitpod.v1.UserService/GetDotfilesConfiguration": true,
	"gitpod.v1.UserService/SetDotfilesConfiguration": true,
}

// TestGitpodContractServed calls every RPC of the contract over HTTP: each
// is routed (never 404), and answers unimplemented exactly when it is in
// unimplementedOnPurpose, which docs/api.md must list.
func TestGitpodContractServed(t *testing.T) {
	t.Parallel()
	ref := loadWireRef(t)
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	for _, r := range ref.rpcs {
		proc := r.service + "/" + r.method
		t.Run(proc, func(t *testing.T) {
			// An empty request: every served RPC refuses it as invalid or
			// finds nothing, so nothing changes.
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/"+proc, strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.admin)
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
				t.Fatalf("not routed: HTTP %d, body not JSON", res.StatusCode)
			}
			code := res.StatusCode
			unimpl := m["code"] == "unimplemented"
			if unimpl != unimplementedOnPurpose[proc] {
				t.Errorf("answer %d %v; unimplemented on purpose: %v", code, m, unimplementedOnPurpose[proc])
			}
			if unimplementedOnPurpose[proc] && !strings.Contains(string(doc), r.method) {
				t.Errorf("docs/api.md does not list %s as unimplemented", r.method)
			}
		})
	}
}
