package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCommandFlagsLeaveServerConfig: only the flags meant as
// configuration keys set them (--data-dir everywhere, --listen and
// --issuer on serve). A command's own flag of the same name, such as
// the provider's issuer of `sts provider create --issuer`, never fills
// the server's key: the pool rules of direct mode read cfg.Issuer as
// this server's (docs/security.md A-56), and a provider issuer with a
// trailing slash refused the command as an invalid configuration.
func TestCommandFlagsLeaveServerConfig(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./sts.yaml
	t.Setenv("STS_ISSUER", "")
	t.Setenv("STS_LISTEN", "")
	t.Setenv("STS_DATA_DIR", "")
	values := map[string]string{"issuer": "https://token.actions.githubusercontent.com", "listen": "127.0.0.1:9", "data-dir": "flag-data"}
	bound := map[string]bool{"sts serve --issuer": true, "sts serve --listen": true}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, v := range values {
			if name == "data-dir" || c.LocalNonPersistentFlags().Lookup(name) == nil {
				continue
			}
			label := c.CommandPath() + " --" + name
			t.Run(label, func(t *testing.T) {
				root := newRoot(io.Discard, io.Discard)
				cmd, _, err := root.Find(strings.Fields(c.CommandPath())[1:])
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.ParseFlags([]string{"--" + name, v, "--data-dir", values["data-dir"]}); err != nil {
					t.Fatal(err)
				}
				cfg, err := loadConfig(cmd)
				if err != nil {
					t.Fatalf("loadConfig: %v", err)
				}
				got := map[string]string{"issuer": cfg.Issuer, "listen": cfg.Listen}[name]
				if bound[label] != (got == v) {
					t.Errorf("%s %s: config %s = %q; bound to the key: %v", label, v, name, got, bound[label])
				}
				if cfg.DataDir != values["data-dir"] {
					t.Errorf("%s: data_dir = %q, want the --data-dir flag's %q", label, cfg.DataDir, values["data-dir"])
				}
			})
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
}
