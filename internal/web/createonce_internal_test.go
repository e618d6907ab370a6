package web

import (
	"strings"
	"testing"
	"time"
)

// TestCreateOnceAge (docs/security.md T-165): a new-token form's one-time
// value creates for createOnceFor after the page made it, its record
// lasting longer; an older one is refused (the page shows the form again
// with a new value), since its record may be gone.
func TestCreateOnceAge(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := &Handler{o: Options{FormKey: []byte("form key"), Now: func() time.Time { return now }}}
	v := h.onceValue("ada")
	made := now
	now = made.Add(createOnceFor)
	once, err := h.checkOnce("ada", v)
	if err != nil {
		t.Fatalf("a value createOnceFor old: %v", err)
	}
	if !once.Issued.Equal(made) || !strings.HasPrefix(once.ID, "web-create:") {
		t.Errorf("once = %+v; want issued %v", once, made)
	}
	// The record outlives the last moment any replica takes the value:
	// one whose clock is up to five minutes behind the one collecting
	// expired records still accepts it until createOnceFor by its clock.
	if last := made.Add(createOnceFor + 5*time.Minute); once.Expires.Before(last) {
		t.Errorf("the value is recorded until %v; want at least %v (createOnceFor and five minutes of clock difference)", once.Expires, last)
	}
	now = made.Add(createOnceFor + time.Second)
	if _, err := h.checkOnce("ada", v); err == nil || !strings.Contains(err.Error(), "more than a day ago") {
		t.Errorf("a value older than createOnceFor: %v, want refused as too old", err)
	}
	now = made
	for _, bad := range []string{"x", v[:len(v)-2], v + "A", strings.ToUpper(v)} {
		if _, err := h.checkOnce("ada", bad); err == nil {
			t.Errorf("checkOnce(%q) took a value sts did not make", bad)
		}
	}
}
