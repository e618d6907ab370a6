package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/opensts/sts/internal/gen/gitpod/v1"
	"github.com/opensts/sts/internal/gen/gitpod/v1/gitpodv1connect"
	stsv1 "github.com/opensts/sts/internal/gen/sts/v1"
	"github.com/opensts/sts/internal/gen/sts/v1/stsv1connect"
	"github.com/opensts/sts/internal/storage"
	"github.com/opensts/sts/internal/storage/sqlstore"
	"github.com/opensts/sts/internal/tokens"
)

// TestPATExpiryWellKnownTypesChecked: a Timestamp or Duration that the
// proto3 JSON mapping cannot carry (nanos outside [0, 1e9), seconds and
// nanos of different signs, a year past 9999, a Duration past ±10000
// years) is invalid_argument naming the field in the binary protocols
// too, as protojson refuses it in Connect JSON, and changes nothing.
// CreatePersonalAccessToken and RegeneratePersonalAccessToken read them
// unchecked: such an expiry was normalized and a token created or
// regenerated with it, or refused as permission_denied ("would outlive
// the credential") where JSON says invalid_argument.
func TestPATExpiryWellKnownTypesChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	base, hc := e.h2c(t)
	week := int64(7 * 24 * 3600)
	at := time.Now().Add(7 * 24 * time.Hour).Unix()
	type expiry struct {
		field    string
		validFor *durationpb.Duration
		at       *timestamppb.Timestamp
	}
	bad := map[string]expiry{
		"duration nanos of the other sign": {field: "validFor", validFor: &durationpb.Duration{Seconds: week, Nanos: -1}},
		"duration nanos out of range":      {field: "validFor", validFor: &durationpb.Duration{Seconds: week, Nanos: 1e9}},
		"duration past 10000 years":        {field: "validFor", validFor: &durationpb.Duration{Seconds: 315576000001}},
		"timestamp negative nanos":         {field: "expiresAt", at: &timestamppb.Timestamp{Seconds: at, Nanos: -1}},
		"timestamp nanos out of range":     {field: "expiresAt", at: &timestamppb.Timestamp{Seconds: at, Nanos: 1e9}},
		"timestamp past year 9999":         {field: "expiresAt", at: &timestamppb.Timestamp{Seconds: 253402300800}},
	}
	for proto, opts := range map[string][]connect.ClientOption{"connect-proto": nil, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()}} {
		uc := gitpodv1connect.NewUserServiceClient(hc, base, opts...)
		count := func() int {
			l, err := uc.ListPersonalAccessTokens(as(e.secret), &gitpodv1.ListPersonalAccessTokensRequest{Pagination: &gitpodv1.PaginationRequest{PageSize: 100}})
			if err != nil {
				t.Fatal(err)
			}
			return len(l.GetPersonalAccessTokens())
		}
		victim, err := uc.CreatePersonalAccessToken(as(e.secret), &gitpodv1.CreatePersonalAccessTokenRequest{Description: "victim", ValidFor: durationpb.New(48 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for name, x := range bad {
			before := count()
			_, err := uc.CreatePersonalAccessToken(as(e.secret), &gitpodv1.CreatePersonalAccessTokenRequest{ValidFor: x.validFor, ExpiresAt: x.at})
			wantFieldError(t, proto+": Create with a "+name, err, x.field)
			if n := count(); n != before {
				t.Errorf("%s: Create with a %s: %d tokens, want %d", proto, name, n, before)
			}
			_, err = uc.RegeneratePersonalAccessToken(as(e.secret), &gitpodv1.RegeneratePersonalAccessTokenRequest{
				PersonalAccessTokenId: victim.GetPersonalAccessToken().GetId(), ValidFor: x.validFor, ExpiresAt: x.at,
			})
			wantFieldError(t, proto+": Regenerate with a "+name, err, x.field)
		}
		// Nothing was regenerated: the victim's secret still works.
		if _, err := e.pats.Authenticate(t.Context(), victim.GetToken()); err != nil {
			t.Errorf("%s: the token refused regenerations no longer authenticates: %v", proto, err)
		}
	}
	// The judge: Connect JSON refuses what it can express of the same
	// (protojson; a Go client will not even marshal it).
	for _, body := range []string{`{"validFor":"315576000001s"}`, `{"expiresAt":"10000-01-01T00:00:00Z"}`} {
		code, _, m := post(t, e, "/gitpod.v1.UserService/CreatePersonalAccessToken", e.secret, body)
		if code != 400 || m["code"] != "invalid_argument" {
			t.Errorf("connect-json: Create with %s: %d %v, want 400 invalid_argument", body, code, m)
		}
	}
}

// wantFieldError checks err is invalid_argument naming field.
func wantFieldError(t *testing.T, what string, err error, field string) {
	t.Helper()
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), field) {
		t.Errorf("%s: %v, want invalid_argument naming %s", what, err, field)
	}
}

// TestExchangeTokenValidForChecked: PrincipalService/CreateExchangeToken's
// validFor outside the proto3 range is invalid_argument naming it in the
// binary protocols, as in JSON; it was normalized (60 s less a
// nanosecond) and an exchange token issued.
func TestExchangeTokenValidForChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rows := func() (n int) {
		if err := e.store.(*sqlstore.Store).DB().QueryRowContext(t.Context(), `SELECT count(*) FROM exchange_tokens`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for proto, opts := range map[string][]connect.ClientOption{"connect-proto": nil, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()}} {
		c := e.clients(e.srv.URL, opts...)
		for name, d := range map[string]*durationpb.Duration{
			"nanos of the other sign": {Seconds: 60, Nanos: -1},
			"nanos out of range":      {Seconds: 60, Nanos: 1e9},
		} {
			before := rows()
			_, err := c.principal.CreateExchangeToken(as(e.admin), &stsv1.CreateExchangeTokenRequest{PrincipalId: e.user.ID, ValidFor: d})
			wantFieldError(t, proto+": CreateExchangeToken with a duration "+name, err, "validFor")
			if n := rows(); n != before {
				t.Errorf("%s: CreateExchangeToken with a duration %s: %d exchange tokens stored, want %d", proto, name, n, before)
			}
		}
	}
}

// TestZeroTimestampRefused: 0001-01-01T00:00:00Z, the least Timestamp, is
// Go's zero time, which sts reads as unset: a host token created with it
// was stored never expiring, an update with it cleared the expiry, and a
// subject revocation with it as issuedBefore stored a row that revokes
// nothing. It is invalid_argument naming the field in every protocol, and
// nothing changes.
func TestZeroTimestampRefused(t *testing.T) {
	t.Parallel()
	e, runnerID, _, _ := hostEnv(t)
	zero := &timestamppb.Timestamp{Seconds: -62135596800}
	if !zero.AsTime().IsZero() {
		t.Fatalf("%v is not Go's zero time", zero.AsTime())
	}
	exp := time.Now().Add(8 * time.Hour).UTC().Truncate(time.Second)
	for proto, opts := range map[string][]connect.ClientOption{
		"connect-proto": nil, "connect-json": {connect.WithProtoJSON()}, "grpc": {connect.WithGRPC()}, "grpc-web": {connect.WithGRPCWeb()},
	} {
		rc := gitpodv1connect.NewRunnerConfigurationServiceClient(e.srv.Client(), e.srv.URL, opts...)
		count := func() int {
			l, err := rc.ListHostAuthenticationTokens(as(e.secret), &gitpodv1.ListHostAuthenticationTokensRequest{Filter: &gitpodv1.ListHostAuthenticationTokensRequest_Filter{RunnerId: &runnerID}})
			if err != nil {
				t.Fatal(err)
			}
			return len(l.GetTokens())
		}
		in := &gitpodv1.CreateHostAuthenticationTokenRequest{
			RunnerId: runnerID, UserId: e.user.ID, Host: "github.com", Token: "gho_xxxxxxxxxxxx",
			Source:    gitpodv1.HostAuthenticationTokenSource_HOST_AUTHENTICATION_TOKEN_SOURCE_PAT,
			ExpiresAt: timestamppb.New(exp),
		}
		victim, err := rc.CreateHostAuthenticationToken(as(e.secret), in)
		if err != nil {
			t.Fatal(err)
		}
		before := count()
		in.ExpiresAt = zero
		_, err = rc.CreateHostAuthenticationToken(as(e.secret), in)
		wantFieldError(t, proto+": CreateHostAuthenticationToken expiring 0001-01-01T00:00:00Z", err, "expiresAt")
		if n := count(); n != before {
			t.Errorf("%s: CreateHostAuthenticationToken expiring 0001-01-01T00:00:00Z: %d tokens, want %d", proto, n, before)
		}
		_, err = rc.UpdateHostAuthenticationToken(as(e.secret), &gitpodv1.UpdateHostAuthenticationTokenRequest{Id: victim.GetToken().GetId(), ExpiresAt: zero})
		wantFieldError(t, proto+": UpdateHostAuthenticationToken expiring 0001-01-01T00:00:00Z", err, "expiresAt")
		got, err := rc.GetHostAuthenticationToken(as(e.secret), &gitpodv1.GetHostAuthenticationTokenRequest{Id: victim.GetToken().GetId()})
		if err != nil || !got.GetToken().GetExpiresAt().AsTime().Equal(exp) {
			t.Errorf("%s: after the refused update the token expires %v (%v), want %v", proto, got.GetToken().GetExpiresAt(), err, exp)
		}

		subject := "repo:acme/zero/" + proto
		_, err = stsv1connect.NewRevocationServiceClient(e.srv.Client(), e.srv.URL, opts...).RevokeSubject(as(e.admin), &stsv1.RevokeSubjectRequest{Subject: subject, IssuedBefore: zero})
		wantFieldError(t, proto+": RevokeSubject issued before 0001-01-01T00:00:00Z", err, "issuedBefore")
		if _, err := e.store.GetRevocation(t.Context(), tokens.RevocationIDSubject(subject)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: RevokeSubject issued before 0001-01-01T00:00:00Z stored a revocation (%v)", proto, err)
		}
	}
}
