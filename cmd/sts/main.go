// Command sts is the self-hostable Security Token Service. All wiring lives
// in internal/cli; this file only turns signals into a context (cli.SignalContext) and the
// result into an exit code.
package main

import (
	"context"
	"os"

	"github.com/opensts/sts/internal/cli"
)

func main() {
	ctx, stop := cli.SignalContext(context.Background())
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
