package config

import "time"

// WebConfig configures the pages people use in a browser (internal/web):
// sign-in and /tokens.
type WebConfig struct {
	Session WebSessionConfig `koanf:"session"`
}

// WebSessionConfig bounds a browser session (docs/configuration.md).
type WebSessionConfig struct {
	// IdleTimeout ends a session not used for this long.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// AbsoluteTimeout ends a session this long after sign-in, used or not.
	AbsoluteTimeout time.Duration `koanf:"absolute_timeout"`
}

func defaultWeb() WebConfig {
	return WebConfig{Session: WebSessionConfig{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: 24 * time.Hour}}
}

func validateWeb(c *Config, e *Error) {
	s := c.Web.Session
	if s.IdleTimeout < time.Minute {
		e.add("web.session.idle_timeout", "must be at least 1m, got %s", s.IdleTimeout)
	}
	if s.AbsoluteTimeout < s.IdleTimeout {
		e.add("web.session.absolute_timeout", "must be at least web.session.idle_timeout (%s), got %s", s.IdleTimeout, s.AbsoluteTimeout)
	}
	if s.AbsoluteTimeout > 30*24*time.Hour {
		e.add("web.session.absolute_timeout", "must be at most 720h, got %s", s.AbsoluteTimeout)
	}
}
