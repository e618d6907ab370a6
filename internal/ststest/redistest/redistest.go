// Package redistest gives each test the Redis server of
// STS_TEST_REDIS_URL and its own key namespace there. Like pgtest, it is a
// test kit with no dependency on the rest of sts.
package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL returns STS_TEST_REDIS_URL (for example redis://127.0.0.1:6379/15)
// after checking the server answers. It skips the test when the variable
// is unset, and fails it instead when CI=true, so CI cannot pass without
// exercising Redis.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("STS_TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("STS_TEST_REDIS_URL is not set; CI must run the Redis tests")
		}
		t.Skip("STS_TEST_REDIS_URL is not set; to run this test set it to a Redis URL, e.g. redis://127.0.0.1:6379/15")
	}
	c := client(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: STS_TEST_REDIS_URL (%s) does not answer: %v", c.Options().Addr, err)
	}
	return u
}

// Prefix returns a key prefix no other test uses ("sts:test:<random>:")
// and deletes every key containing it when the test ends.
func Prefix(t testing.TB, url string) string {
	t.Helper()
	// rand.Text is base32 (A-Z, 2-7): no glob metacharacters.
	p := "sts:test:" + rand.Text()[:12] + ":"
	DeleteOnCleanup(t, url, "*"+p+"*")
	return p
}

// DeleteOnCleanup deletes the keys matching the glob pattern when the test
// ends, for keys a test cannot give its own prefix (a server's).
func DeleteOnCleanup(t testing.TB, url, pattern string) {
	t.Helper()
	c := client(t, url)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var keys []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("redistest: scan %s: %v", pattern, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("redistest: delete %d keys: %v", len(keys), err)
			}
		}
	})
}

// Keys returns the keys matching the glob pattern.
func Keys(t testing.TB, url, pattern string) []string {
	t.Helper()
	c := client(t, url)
	var keys []string
	iter := c.Scan(t.Context(), 0, pattern, 1000).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("redistest: scan %s: %v", pattern, err)
	}
	return keys
}

// client opens a client closed when the test ends. Errors never repeat
// the URL: it may hold a password.
func client(t testing.TB, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal("redistest: STS_TEST_REDIS_URL is not a valid redis:// URL")
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}
