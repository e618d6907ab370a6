package config

import (
	"errors"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// addDecodeErrors turns mapstructure's (possibly joined) errors into one
// problem per key, so a bad http.max_body_bytes reads as a problem of that
// key rather than one opaque message.
func addDecodeErrors(problems *Error, err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			addDecodeErrors(problems, e)
		}
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		msg := "invalid value"
		if inner := de.Unwrap(); inner != nil {
			msg = inner.Error()
		}
		problems.add(strings.TrimPrefix(de.Name(), "."), "%s", msg)
		return
	}
	problems.add("config", "%v", err)
}
