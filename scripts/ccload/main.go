// Command ccload sends a fixed number of client_credentials requests over
// keep-alive connections and fails when any is not answered 200: the load
// of scripts/instr.sh, which counts the server's instructions for exactly
// that many requests (docs/performance.md "`client_credentials`, fourth
// pass"). wrk runs for a time, not a count, so it cannot be used there.
//
//	go run ./scripts/ccload -url http://127.0.0.1:8080/oauth2/token -auth auth.txt -n 1024 -c 8
//
// The Authorization header's value is read from a file (as
// scripts/bench.sh writes it), so the client secret appears on no command
// line.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

func main() {
	url := flag.String("url", "", "token endpoint")
	authFile := flag.String("auth", "", "file holding the Authorization header's value")
	n := flag.Int("n", 1000, "requests")
	c := flag.Int("c", 8, "connections, one request in flight on each")
	flag.Parse()
	b, err := os.ReadFile(*authFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ccload:", err)
		os.Exit(2)
	}
	if failed := run(*url, strings.TrimSpace(string(b)), *n, *c, os.Stderr); failed > 0 {
		fmt.Fprintf(os.Stderr, "ccload: %d of %d requests failed\n", failed, *n)
		os.Exit(1)
	}
}

// run sends n requests over c connections and returns how many failed;
// the first failure is described on log.
func run(url, auth string, n, c int, log io.Writer) int64 {
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true}}
	var left, failed atomic.Int64
	left.Store(int64(n))
	fail := func(what any) {
		if failed.Add(1) == 1 {
			fmt.Fprintln(log, "ccload: first failure:", what)
		}
	}
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("grant_type=client_credentials&scope=read"))
				if err != nil {
					fail(err)
					continue
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", auth)
				resp, err := cl.Do(req)
				if err != nil {
					fail(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(resp.Status)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}
