package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/opensts/sts/internal/pat"
)

// A new-token form creates at most one token (docs/security.md T-165).
// Without JavaScript its answer, the secret, is the answer to a POST: a
// reload, Back and Forward, or a second click sends the form again. So
// the page puts a one-time value in the form (onceValue), made for the
// person it is shown to, and the creation uses it up in its own
// transaction; the same form again creates nothing.

// createOnceFor is how long a new-token form's one-time value creates: a
// page open longer is refused as too old and shown again, with a new one.
const createOnceFor = 24 * time.Hour

// onceRecordMargin is how much longer than createOnceFor a used value is
// recorded: replicas' clocks differ, and one that is behind the replica
// collecting expired records still takes the value until createOnceFor
// by its own clock. Without the margin the record could be gone while the
// value still creates: a second token.
const onceRecordMargin = 5 * time.Minute

// onceLen is the length of a one-time value: when it was made (Unix
// seconds), 16 random bytes, and a MAC of both and the person.
const onceLen = 8 + 16 + sha256.Size

// onceValue is a new one-time value for principalID's new-token form.
func (h *Handler) onceValue(principalID string) string {
	b := make([]byte, 24, onceLen)
	binary.BigEndian.PutUint64(b, uint64(h.now().Unix()))
	_, _ = rand.Read(b[8:24])
	return base64.RawURLEncoding.EncodeToString(append(b, h.onceMAC(principalID, b)...))
}

func (h *Handler) onceMAC(principalID string, b []byte) []byte {
	m := hmac.New(sha256.New, h.o.FormKey)
	m.Write([]byte("sts web create once v1\x00" + principalID + "\x00"))
	m.Write(b)
	return m.Sum(nil)
}

// onceErr is why a one-time value does not create.
type onceErr string

func (e onceErr) Error() string { return string(e) }

// checkOnce reads the one-time value v of principalID's form: what the
// creation uses up (pat.CreateInput.Once), or an error to show the person
// when sts did not make it for them, or made it over createOnceFor ago.
func (h *Handler) checkOnce(principalID, v string) (*pat.Once, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != onceLen || !hmac.Equal(b[24:], h.onceMAC(principalID, b[:24])) {
		return nil, onceErr("This form was not made for you: it was opened before another person signed in to this browser, or it was changed. " +
			"Nothing was created; check it and send it again.")
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b)), 0)
	if h.now().Sub(issued) > createOnceFor {
		return nil, onceErr("This page was opened more than a day ago; nothing was created. Check the form and send it again.")
	}
	// The record is the MAC, which names the person: another's value
	// never stands for theirs.
	return &pat.Once{ID: "web-create:" + base64.RawURLEncoding.EncodeToString(b[24:]), Issued: issued,
		Expires: issued.Add(createOnceFor + onceRecordMargin)}, nil
}
