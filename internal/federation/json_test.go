package federation

import "testing"

// TestScanStructureAllocs: the duplicate-name check of a typical subject
// token payload (a dozen members, one nested object) copies no member name:
// at most one names slice per object.
func TestScanStructureAllocs(t *testing.T) {
	payload := []byte(`{"iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/app:ref:refs/heads/main",` +
		`"aud":["sts"],"exp":4102444800,"iat":1700000000,"nbf":1700000000,"jti":"abc","repository":"acme/app",` +
		`"repository_owner":"acme","ref":"refs/heads/main","workflow":"ci","act":{"sub":"x","aud":"y"}}`)
	if err := scanStructure(payload); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = scanStructure(payload) }); allocs > 2 {
		t.Errorf("scanStructure = %.0f allocs, want ≤ 2", allocs)
	}
	for _, dup := range []string{`{"sub":"a","SUB":"b"}`, `{"a":{"x":1,"X":2}}`, `{"s\u0075b":"a","sub":"b"}`} {
		if scanStructure([]byte(dup)) == nil {
			t.Errorf("%s: duplicate names accepted", dup)
		}
	}
}
