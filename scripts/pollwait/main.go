// Command pollwait measures how long a Go program takes to notice that
// data arrived on an idle connection while its Ps are kept busy by
// goroutines that are always runnable, as a server's are at saturation.
//
//	go run ./scripts/pollwait              # GOMAXPROCS as the runtime sets it
//	GOMAXPROCS=3 go run ./scripts/pollwait -busy 2
//
// A writer sends one byte every -every on a loopback connection and notes
// when; the reading goroutine notes when its Read returned. The difference
// is the time from the write to the reader running again: the kernel's
// loopback (microseconds) plus the wait until the Go scheduler looked for
// ready connections and then ran the reader. -busy goroutines compute in
// slices of about -slice and yield between them, each yield going through
// the scheduler without ever leaving it idle.
//
// The scheduler looks for ready connections when a P runs out of work
// (findRunnable polls the network only after its local and the global
// run queues are empty) and otherwise only from sysmon, every 10 ms. With
// at least as many busy goroutines as Ps, no P runs out of work, and the
// wait is spread over up to 10 ms. See docs/reliability.md, "Tried: a
// connection gate". -stw stops the world on a ticker, and the runtime
// polls the network each time it starts it again.
//
//	GOMAXPROCS=2 go run ./scripts/pollwait -busy 2 -stw 1ms
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
)

func main() {
	busy := flag.Int("busy", runtime.GOMAXPROCS(0), "goroutines that are always runnable")
	n := flag.Int("n", 500, "bytes to send")
	every := flag.Duration("every", 5*time.Millisecond, "mean time between bytes (each from half to one and a half of it)")
	slice := flag.Duration("slice", 50*time.Microsecond, "each busy goroutine's work between yields")
	stw := flag.Duration("stw", 0, "stop the world this often (runtime.ReadMemStats); 0: never")
	flag.Parse()
	if *busy < 0 || *n < 1 || *every <= 0 || *slice <= 0 || *stw < 0 {
		fmt.Fprintln(os.Stderr, "pollwait: -busy must be at least 0, -n at least 1, -every and -slice above 0, -stw not negative")
		os.Exit(2)
	}
	got, err := run(*busy, *n, *every, *slice, *stw)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pollwait:", err)
		os.Exit(1)
	}
	q := func(p float64) time.Duration { return got[int(p*float64(len(got)-1))].Round(time.Microsecond) }
	fmt.Printf("GOMAXPROCS=%d busy=%d: write to read p50 %v, p90 %v, p99 %v, max %v (%d bytes)\n",
		runtime.GOMAXPROCS(0), *busy, q(.5), q(.9), q(.99), q(1), len(got))
}

// run sends n bytes and returns, sorted, how long after its write each was
// read.
//
// With stw above 0, a goroutine stops the world that often: the runtime
// polls the network when it starts the world again, so a byte is seen
// within stw however busy the Ps are (docs/reliability.md, "Tried:
// polling the network more often").
func run(busy, n int, every, slice, stw time.Duration) ([]time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	w, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer w.Close()
	r, err := ln.Accept()
	if err != nil {
		return nil, err
	}
	defer r.Close()

	var stop atomic.Bool
	defer stop.Store(true)
	for range busy {
		go spin(&stop, slice)
	}
	if stw > 0 {
		go stopTheWorld(&stop, stw)
	}

	var sent atomic.Int64 // when the byte in flight was written (ns since start)
	start := time.Now()
	waits := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 1)
		for {
			if _, err := r.Read(buf); err != nil {
				close(waits)
				return
			}
			waits <- time.Since(start) - time.Duration(sent.Load())
		}
	}()
	got := make([]time.Duration, 0, n)
	for range n {
		// Jittered, so the writes do not fall in step with sysmon's.
		time.Sleep(every/2 + rand.N(every))
		sent.Store(int64(time.Since(start)))
		if _, err := w.Write([]byte{1}); err != nil {
			return nil, err
		}
		d, ok := <-waits // one byte in flight at a time
		if !ok {
			return nil, fmt.Errorf("the reading side closed")
		}
		got = append(got, d)
	}
	slices.Sort(got)
	return got, nil
}

// spin computes in slices of about d and yields between them until stop.
func spin(stop *atomic.Bool, d time.Duration) {
	x := 0
	for !stop.Load() {
		for t := time.Now(); time.Since(t) < d; {
			for i := range 1000 {
				x += i * i
			}
		}
		runtime.Gosched()
	}
	sink.Add(int64(x))
}

var sink atomic.Int64

// stopTheWorld stops the world every d until stop.
func stopTheWorld(stop *atomic.Bool, d time.Duration) {
	var m runtime.MemStats
	for !stop.Load() {
		time.Sleep(d)
		runtime.ReadMemStats(&m)
	}
}
