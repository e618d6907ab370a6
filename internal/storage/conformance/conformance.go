package conformance

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opensts/sts/internal/storage"
)

// subTestTimeout bounds one subtest; on expiry every goroutine's stack is
// dumped and the test binary panics, so a deadlocked backend is diagnosable.
const subTestTimeout = 60 * time.Second

type subTest struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}

// RunTests runs the behavioural contract of storage.Store against a backend.
// newStore must return an empty, open, migrated store; it is closed after each subtest.
func RunTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	runTests(t, newStore, []subTest{
		{"Health", testHealth},
		{"WriteProbe", testWriteProbe},
		{"OrganizationCRUD", testOrganizationCRUD},
		{"PrincipalCRUD", testPrincipalCRUD},
		{"TrustCRUD", testTrustCRUD},
		{"ProviderRequiresPool", testProviderRequiresPool},
		{"DeletePoolDeletesProviders", testDeletePoolDeletesProviders},
		{"ClientCRUD", testClientCRUD},
		{"KeysCAS", testKeysCAS},
		{"KeySetVersion", testKeySetVersion},
		{"IssuedTokenRevocation", testIssuedTokenRevocation},
		{"ListRevocationsSince", testListRevocationsSince},
		{"PATCRUD", testPATCRUD},
		{"PATLookupByDigest", testPATLookupByDigest},
		{"ExchangeTokenConsume", testExchangeTokenConsume},
		{"ExchangeTokensOfPrincipal", testExchangeTokensOfPrincipal},
		{"RefreshTokenCRUD", testRefreshTokenCRUD},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"RevokeRefreshFamily", testRevokeRefreshFamily},
		{"RevokeRefreshSubject", testRevokeRefreshSubject},
		{"CredentialCiphertextRoundTrip", testCredentialCiphertextRoundTrip},
		{"HostTokenList", testHostTokenList},
		{"HostTokenRefreshable", testHostTokenRefreshable},
		{"HostTokenSealVersionDefault", testHostTokenSealVersionDefault},
		{"RunnerKeyCRUD", testRunnerKeyCRUD},
		{"AuditAppendList", testAuditAppendList},
		{"AuditDefaultLimit", testAuditDefaultLimit},
		{"AuditPaging", testAuditPaging},
		{"AuditLargeBatchAllOrNone", testAuditLargeBatchAllOrNone},
		{"AuditPurgeBounded", testAuditPurgeBounded},
		{"UnitOfWork", testUnitOfWork},
		{"UnitOfWorkChanges", testUnitOfWorkChanges},
		{"UnitOfWorkTrust", testUnitOfWorkTrust},
		{"UnitOfWorkKeys", testUnitOfWorkKeys},
		{"UnitOfWorkMarkUsed", testUnitOfWorkMarkUsed},
		{"UnitOfWorkBoundReads", testUnitOfWorkBoundReads},
		{"LockOwners", testLockOwners},
		{"ReplayRejectsReuse", testReplayRejectsReuse},
		{"NotFoundSentinels", testNotFoundSentinels},
		{"NULKeyNotFound", testNULKeyNotFound},
		{"AlreadyExistsSentinels", testAlreadyExistsSentinels},
		{"UpdaterErrorLeavesRowUnchanged", testUpdaterErrorLeavesRowUnchanged},
		{"TimezoneRoundTrip", testTimezoneRoundTrip},
		{"ZeroTimesRoundTrip", testZeroTimesRoundTrip},
		{"GarbageCollection", testGarbageCollection},
		{"ServerSecretCRUD", testServerSecretCRUD},
		{"WebSessionCRUD", testWebSessionCRUD},
		{"LoginLinkConsume", testLoginLinkConsume},
		{"DisableEndsWebSessions", testDisableEndsWebSessions},
		{"SessionNeedsEnabledPrincipal", testSessionNeedsEnabledPrincipal},
		{"UpstreamIdentityCRUD", testUpstreamIdentityCRUD},
		{"UnitOfWorkUpstreamIdentity", testUnitOfWorkUpstreamIdentity},
		{"WebSessionGC", testWebSessionGC},
		{"TrimWebSessions", testTrimWebSessions},
		{"AuthCodeConsume", testAuthCodeConsume},
		{"ConsentCRUD", testConsentCRUD},
		{"RevokeRefreshClientSubject", testRevokeRefreshClientSubject},
	})
}

// RunConcurrencyTests runs parallel Update*/MarkUsed/Consume races with real goroutines.
func RunConcurrencyTests(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	runTests(t, newStore, []subTest{
		{"ConcurrentUpdateLastWriterSeesFresh", testConcurrentUpdateOrganization},
		{"ConcurrentUpdatePAT", testConcurrentUpdatePAT},
		{"ConcurrentKeyRotationOneWins", testConcurrentKeyRotation},
		{"ConcurrentConsumeExchangeToken", testConcurrentConsumeExchangeToken},
		{"ConcurrentMarkUsed", testConcurrentMarkUsed},
		{"ConcurrentCreatePATSameDigest", testConcurrentCreatePATSameDigest},
		{"ConcurrentCreateServerSecret", testConcurrentCreateServerSecret},
		{"ConcurrentConsumeLoginLink", testConcurrentConsumeLoginLink},
		{"DisableRacingSessionCreate", testDisableRacingSessionCreate},
		{"ConcurrentConsumeAuthCode", testConcurrentConsumeAuthCode},
		{"LockHoldsOwnerAgainstDeletion", testLockHoldsOwnerAgainstDeletion},
		{"DeleteOrganizationRacingCreate", testDeleteOrganizationRacingCreate},
		{"LockPool", testLockPool},
		{"LockPrincipalExclusive", testLockPrincipalExclusive},
	})
}

// runTests runs each subtest on a fresh store (dex runTests) and closes the
// store afterwards. The subtests run in parallel with each other: each has
// its own store, and most of a PostgreSQL subtest is waiting for the
// server (its schema's migrations above all).
func runTests(t *testing.T, newStore func(t *testing.T) storage.Store, tests []subTest) {
	t.Helper()
	for _, st := range tests {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close() = %v, want nil", err)
				}
			}()
			withTimeout(t, subTestTimeout, func() { st.fn(t, s) })
		})
	}
}

// withTimeout runs f and, if it has not returned after d, writes every
// goroutine's stack to stderr and panics (dex withTimeout). A panic is the
// only way to stop a goroutine stuck inside a backend call.
func withTimeout(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	defer close(done)
	name := t.Name()
	go func() {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-done:
		case <-timer.C:
			fmt.Fprintf(os.Stderr, "conformance: %s did not finish within %v; goroutine dump:\n", name, d)
			_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
			panic(fmt.Sprintf("conformance: %s timed out after %v", name, d))
		}
	}()
	f()
}

// cmpOpts compares records: nil and empty slices/maps are equal, and times
// compare with time.Time.Equal (cmp uses the Equal method).
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

// errUpdater is what failing updaters return, wrapped, to check that
// Update* passes the updater's error through.
var errUpdater = errors.New("conformance: updater refused")

// diff fails the test when got differs from want.
func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, cmpOpts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// mustNil stops the test when err is not nil.
func mustNil(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s = %v, want nil", call, err)
	}
}

// wantErrIs reports an error unless errors.Is(err, want).
func wantErrIs(t *testing.T, call string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want an error matching %v", call, err, want)
	}
}

func testHealth(t *testing.T, s storage.Store) {
	if err := s.Health(t.Context()); err != nil {
		t.Errorf("Health() = %v, want nil on a fresh store", err)
	}
}
