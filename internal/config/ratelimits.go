package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// redisURLShape is the message for every malformed rate_limits.redis_url.
// It never repeats the value: the URL may carry a password.
const redisURLShape = "must be a redis:// or rediss:// URL such as redis://127.0.0.1:6379/0 (the value is not shown: it may hold a password)"

// checkRedisURL accepts empty (in-memory limits) or
// redis[s]://[[user]:password@]host[:port][/db] without query options:
// the timeouts the client applies come from rate_limits.redis_timeout,
// never from the URL.
func checkRedisURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Hostname() == "" || u.Opaque != "" {
		return errors.New(redisURLShape)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New(redisURLShape)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not carry query options or a fragment; set rate_limits.redis_timeout instead")
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return errors.New("the path must be a database number such as /0")
		}
	}
	return nil
}

// checkRedisTimeout bounds the wait a request may spend on Redis.
func checkRedisTimeout(d time.Duration) error {
	if d < time.Millisecond || d > 5*time.Second {
		return fmt.Errorf("must be between 1ms and 5s, got %s", d)
	}
	return nil
}
