package conformance

import (
	"testing"
	"time"

	"github.com/opensts/sts/internal/storage"
)

// checkTime reports unless got is the same instant as want and in UTC.
func checkTime(t *testing.T, what string, want, got time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v (the same instant)", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s.Location() = %v, want UTC", what, got.Location())
	}
}

// checkZero reports unless got is the zero time.
func checkZero(t *testing.T, what string, got time.Time) {
	t.Helper()
	if !got.IsZero() {
		t.Errorf("%s = %v, want the zero time", what, got)
	}
}

// testTimezoneRoundTrip stores times built in non-UTC zones, with
// microsecond precision, and expects the same instants back in UTC (dex
// testTimezones).
func testTimezoneRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	west := time.FixedZone("UTC-07:30", -(7*3600 + 30*60))
	east := time.FixedZone("UTC+05:45", 5*3600+45*60)
	base := time.Date(2024, 3, 10, 2, 30, 15, 123456000, west) // microseconds, no nanoseconds
	at := func(d time.Duration) time.Time { return base.Add(d).In(east) }
	far := time.Date(2099, 12, 31, 23, 59, 59, 999999000, east)

	o := newTokenOwner(t, s)

	org := orgRecord()
	org.CreatedAt, org.UpdatedAt = base, at(time.Second)
	mustNil(t, "CreateOrganization", s.CreateOrganization(ctx, org))
	gotOrg, err := s.GetOrganization(ctx, org.ID)
	mustNil(t, "GetOrganization", err)
	checkTime(t, "Organization.CreatedAt", org.CreatedAt, gotOrg.CreatedAt)
	checkTime(t, "Organization.UpdatedAt", org.UpdatedAt, gotOrg.UpdatedAt)

	pat := patRecord(o.org.ID, o.principal.ID)
	pat.CreatedAt, pat.ExpiresAt, pat.LastUsedAt = base, far, at(time.Minute)
	mustNil(t, "CreatePAT", s.CreatePAT(ctx, pat))
	gotPAT, err := s.GetPATByDigest(ctx, pat.Digest)
	mustNil(t, "GetPATByDigest", err)
	checkTime(t, "PAT.CreatedAt", pat.CreatedAt, gotPAT.CreatedAt)
	checkTime(t, "PAT.ExpiresAt", pat.ExpiresAt, gotPAT.ExpiresAt)
	checkTime(t, "PAT.LastUsedAt", pat.LastUsedAt, gotPAT.LastUsedAt)

	key := signingKeyRecord(storage.KeyRetired, base)
	key.ActivatedAt, key.RetiredAt, key.DeleteAfter = at(time.Hour), at(2*time.Hour), at(26*time.Hour)
	setKeys(t, s, nil, []storage.SigningKey{key})
	keys := listKeys(t, s)
	if len(keys) != 1 {
		t.Fatalf("ListSigningKeys() = %d keys, want 1", len(keys))
	}
	checkTime(t, "SigningKey.CreatedAt", key.CreatedAt, keys[0].CreatedAt)
	checkTime(t, "SigningKey.ActivatedAt", key.ActivatedAt, keys[0].ActivatedAt)
	checkTime(t, "SigningKey.RetiredAt", key.RetiredAt, keys[0].RetiredAt)
	checkTime(t, "SigningKey.DeleteAfter", key.DeleteAfter, keys[0].DeleteAfter)

	rev := revocationRecord(at(-time.Hour), far)
	rev.CreatedAt = base
	mustNil(t, "PutRevocation", s.PutRevocation(ctx, rev))
	gotRev, err := s.GetRevocation(ctx, rev.ID)
	mustNil(t, "GetRevocation", err)
	checkTime(t, "Revocation.IssuedBefore", rev.IssuedBefore, gotRev.IssuedBefore)
	checkTime(t, "Revocation.CreatedAt", rev.CreatedAt, gotRev.CreatedAt)
	checkTime(t, "Revocation.ExpiresAt", rev.ExpiresAt, gotRev.ExpiresAt)
	// The since filter compares instants, not wall-clock text.
	revs, err := s.ListRevocations(ctx, base.In(east))
	mustNil(t, "ListRevocations", err)
	if len(revs) != 1 || revs[0].ID != rev.ID {
		t.Errorf("ListRevocations(since = its CreatedAt in another zone) = %d rows, want exactly the revocation", len(revs))
	}
	revs, err = s.ListRevocations(ctx, base.Add(time.Microsecond).In(west))
	mustNil(t, "ListRevocations", err)
	if len(revs) != 0 {
		t.Errorf("ListRevocations(since = 1µs after its CreatedAt) = %d rows, want 0", len(revs))
	}

	rt := o.refreshToken(storage.NewID(), far)
	rt.CreatedAt, rt.RotatedAt = base, at(time.Minute)
	mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
	gotRT, err := s.GetRefreshToken(ctx, rt.ID)
	mustNil(t, "GetRefreshToken", err)
	checkTime(t, "RefreshToken.CreatedAt", rt.CreatedAt, gotRT.CreatedAt)
	checkTime(t, "RefreshToken.ExpiresAt", rt.ExpiresAt, gotRT.ExpiresAt)
	checkTime(t, "RefreshToken.RotatedAt", rt.RotatedAt, gotRT.RotatedAt)

	ht := o.hostToken(o.principal.ID, far)
	ht.CreatedAt, ht.UpdatedAt = base, at(time.Second)
	mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
	gotHT, err := s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken", err)
	checkTime(t, "HostToken.ExpiresAt", ht.ExpiresAt, gotHT.ExpiresAt)
	checkTime(t, "HostToken.CreatedAt", ht.CreatedAt, gotHT.CreatedAt)
	checkTime(t, "HostToken.UpdatedAt", ht.UpdatedAt, gotHT.UpdatedAt)

	et := o.exchangeToken(at(time.Hour))
	et.CreatedAt = base
	mustNil(t, "CreateExchangeToken", s.CreateExchangeToken(ctx, et))
	gotET, err := s.ConsumeExchangeToken(ctx, et.Digest, base.In(west))
	mustNil(t, "ConsumeExchangeToken", err)
	checkTime(t, "ExchangeToken.CreatedAt", et.CreatedAt, gotET.CreatedAt)
	checkTime(t, "ExchangeToken.ExpiresAt", et.ExpiresAt, gotET.ExpiresAt)

	ev := auditRecord(o.org.ID, base)
	mustNil(t, "AppendAudit", s.AppendAudit(ctx, ev))
	evs, err := s.ListAudit(ctx, storage.AuditFilter{OrgID: o.org.ID})
	mustNil(t, "ListAudit", err)
	if len(evs) != 1 {
		t.Fatalf("ListAudit = %d events, want 1", len(evs))
	}
	checkTime(t, "AuditEvent.Time", ev.Time, evs[0].Time)
}

// testZeroTimesRoundTrip checks the fields documented as "zero until …"
// come back as the zero time, not as the Unix epoch or NULL-turned-now.
func testZeroTimesRoundTrip(t *testing.T, s storage.Store) {
	ctx := t.Context()
	o := newTokenOwner(t, s)

	pat := patRecord(o.org.ID, o.principal.ID)
	pat.LastUsedAt = time.Time{}
	mustNil(t, "CreatePAT", s.CreatePAT(ctx, pat))
	gotPAT, err := s.GetPAT(ctx, pat.ID)
	mustNil(t, "GetPAT", err)
	checkZero(t, "PAT.LastUsedAt", gotPAT.LastUsedAt)

	key := signingKeyRecord(storage.KeyNext, now())
	setKeys(t, s, nil, []storage.SigningKey{key})
	keys := listKeys(t, s)
	if len(keys) != 1 {
		t.Fatalf("ListSigningKeys() = %d keys, want 1", len(keys))
	}
	checkZero(t, "SigningKey.ActivatedAt", keys[0].ActivatedAt)
	checkZero(t, "SigningKey.RetiredAt", keys[0].RetiredAt)
	checkZero(t, "SigningKey.DeleteAfter", keys[0].DeleteAfter)

	rev := revocationRecord(time.Time{}, now().Add(time.Hour))
	mustNil(t, "PutRevocation", s.PutRevocation(ctx, rev))
	gotRev, err := s.GetRevocation(ctx, rev.ID)
	mustNil(t, "GetRevocation", err)
	checkZero(t, "Revocation.IssuedBefore", gotRev.IssuedBefore)

	rt := o.refreshToken(storage.NewID(), now().Add(time.Hour))
	mustNil(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
	gotRT, err := s.GetRefreshToken(ctx, rt.ID)
	mustNil(t, "GetRefreshToken", err)
	checkZero(t, "RefreshToken.RotatedAt", gotRT.RotatedAt)

	ht := o.hostToken(o.principal.ID, time.Time{})
	mustNil(t, "CreateHostToken", s.CreateHostToken(ctx, ht))
	gotHT, err := s.GetHostToken(ctx, ht.ID)
	mustNil(t, "GetHostToken", err)
	checkZero(t, "HostToken.ExpiresAt", gotHT.ExpiresAt)

	// Updating a zero time to a value and back to zero round-trips too.
	err = s.UpdatePAT(ctx, pat.ID, func(old storage.PAT) (storage.PAT, error) {
		old.LastUsedAt = now()
		return old, nil
	})
	mustNil(t, "UpdatePAT(set LastUsedAt)", err)
	err = s.UpdatePAT(ctx, pat.ID, func(old storage.PAT) (storage.PAT, error) {
		if old.LastUsedAt.IsZero() {
			t.Errorf("UpdatePAT updater saw a zero LastUsedAt after setting it")
		}
		old.LastUsedAt = time.Time{}
		return old, nil
	})
	mustNil(t, "UpdatePAT(clear LastUsedAt)", err)
	gotPAT, err = s.GetPAT(ctx, pat.ID)
	mustNil(t, "GetPAT", err)
	checkZero(t, "PAT.LastUsedAt after clearing", gotPAT.LastUsedAt)
}
