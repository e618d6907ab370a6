package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// DurationFormat says what ParseDuration accepts; error messages quote it.
const DurationFormat = "a number and unit such as 90s, 15m, 12h, 30d or 1d12h (units ns, us, ms, s, m, h, d; d is 24h)"

// ParseDuration is the one duration syntax of the configuration and of
// every command-line flag: Go's (time.ParseDuration) plus d for 24 hours,
// alone ("30d") or leading ("1d12h"). A bare number other than 0 is
// refused rather than read as nanoseconds.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(in, 'd'); i >= 0 {
		n, err := strconv.ParseUint(in[:i], 10, 31)
		if err != nil || i == 0 {
			return 0, fmt.Errorf("invalid duration %q: want %s", s, DurationFormat)
		}
		days, in = time.Duration(n)*24*time.Hour, in[i+1:]
		if in == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(in)
	if err != nil || (days > 0 && strings.HasPrefix(in, "-")) {
		return 0, fmt.Errorf("invalid duration %q: want %s", s, DurationFormat)
	}
	return days + d, nil
}

// FormatDuration prints d so that ParseDuration reads it back, compactly:
// whole days as "30d", else Go's form without zero units ("2h", "1h30m").
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// durationHook decodes configuration strings into time.Duration with
// ParseDuration.
func durationHook() mapstructure.DecodeHookFuncType {
	return func(from, to reflect.Type, data any) (any, error) {
		if to != reflect.TypeFor[time.Duration]() {
			return data, nil
		}
		switch from.Kind() {
		case reflect.String:
			return ParseDuration(reflect.ValueOf(data).String())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
			// A bare number (YAML int) has no unit: only 0 is unambiguous.
			if reflect.ValueOf(data).IsZero() {
				return time.Duration(0), nil
			}
			return nil, fmt.Errorf("invalid duration %v: want %s", data, DurationFormat)
		}
		return data, nil
	}
}
