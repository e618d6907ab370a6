package cli_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/ststest/paralleltest"
	"github.com/opensts/sts/internal/ststest/rsatest"
)

// reexecEnv makes the test binary behave as the sts command: tests that
// need real processes (killed with SIGKILL, several at once) start
// os.Args[0] with it set, so no separate build is needed and the child is
// built exactly like the test (with the race detector when it is on).
const reexecEnv = "STS_TEST_REEXEC_AS_STS"

func TestMain(m *testing.M) {
	if os.Getenv(reexecEnv) == "1" {
		// The same body as cmd/sts.
		ctx, stop := cli.SignalContext(context.Background())
		code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// Test servers of this process take their RS256 keys from fixed
	// primes: generating the two of a first start is most of its CPU under
	// the race detector. Children (above) generate theirs, as sts does,
	// so that no two processes sharing a database hand out one key twice.
	rsatest.Install()
	// This package's parallel tests mostly wait (out the 5 s caches, for
	// child processes to start): run four at once rather than one per
	// core, unless -test.parallel is given (alone on two cores: 94 s
	// instead of 114).
	paralleltest.Main(m, 4)
}

// stsCommand is `sts args...` as a child process of the test.
func stsCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), reexecEnv+"=1")
	return cmd
}
