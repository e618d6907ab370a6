package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/opensts/sts/internal/loadgen"
)

func printBench(w io.Writer, f runFlags, res *loadgen.Result, cpu time.Duration) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
	fmt.Fprintf(w, "target       %s  (-c %d, %s", f.url, f.concurrency, f.duration)
	if f.rate > 0 {
		fmt.Fprintf(w, ", rate cap %.0f/s", f.rate)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "requests     %d in %s = %.0f req/s, errors %d %v", res.Requests, res.Elapsed.Round(time.Millisecond), res.Throughput(), res.Errors, res.Statuses)
	if res.Rejected > 0 {
		fmt.Fprintf(w, ", of which %d answers 200 but refused", res.Rejected)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "latency      p50 %s  p90 %s  p99 %s  max %s\n", ms(res.Percentile(50)), ms(res.Percentile(90)), ms(res.Percentile(99)), ms(res.Percentile(100)))
	if f.phases {
		pct := func(l []time.Duration) string {
			return fmt.Sprintf("p50 %s  p99 %s  max %s", ms(loadgen.Percentile(l, 50)), ms(loadgen.Percentile(l, 99)), ms(loadgen.Percentile(l, 100)))
		}
		fmt.Fprintf(w, "connections  %d requests opened a new one; connect %s\n", res.NewConns, pct(res.Connect))
		if len(res.Closing) > 0 {
			fmt.Fprintf(w, "closing      answers that closed their connection, by status: %v\n", res.Closing)
		}
		if res.Broken > 0 {
			fmt.Fprintf(w, "broken       %d requests on a kept connection got no answer; first: %s\n", res.Broken, res.FirstBroken)
		}
		fmt.Fprintf(w, "kept conns   %d served; latency %s\n", len(res.Kept), pct(res.Kept))
		fmt.Fprintf(w, "wait         written to first byte, served: %s\n", pct(res.Wait))
	}
	perReq := 0.0
	if res.Requests > 0 && cpu > 0 {
		perReq = float64(cpu.Microseconds()) / float64(res.Requests)
		fmt.Fprintf(w, "server CPU   %.2fs = %.1fµs per request\n", cpu.Seconds(), perReq)
	}
	rssMiB := 0.0
	if f.pid > 0 {
		if rss, peak, err := loadgen.ProcRSS(f.pid); err == nil {
			rssMiB = float64(rss) / (1 << 20)
			fmt.Fprintf(w, "server RSS   %.1f MiB (peak %.1f MiB)\n", rssMiB, float64(peak)/(1<<20))
		}
	}
	fmt.Fprintf(w, "result rps=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f errors=%d cpu_us_per_req=%.1f rss_mib=%.1f\n",
		res.Throughput(), msf(res.Percentile(50)), msf(res.Percentile(90)), msf(res.Percentile(99)), res.Errors, perReq, rssMiB)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
