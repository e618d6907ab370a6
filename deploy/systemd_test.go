package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/config"
)

const unitPath = "systemd/sts.service"

// parseUnit returns section → key → values (a key may repeat).
func parseUnit(t *testing.T, data []byte) map[string]map[string][]string {
	t.Helper()
	unit := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not key=value inside a section", unitPath, n, line)
			}
			unit[section][strings.TrimSpace(k)] = append(unit[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return unit
}

func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	svc := parseUnit(t, data)["Service"]
	if svc == nil {
		t.Fatal("no [Service] section")
	}

	// Each hardening key must be present with exactly this value.
	for key, want := range map[string]string{
		"DynamicUser":             "yes",
		"StateDirectory":          "sts",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"NoNewPrivileges":         "yes",
		"PrivateTmp":              "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"CapabilityBoundingSet":   "",
	} {
		got, ok := svc[key]
		if !ok || len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q; want exactly %s=%s", key, got, key, want)
		}
	}
	// Exit 2 is an error a restart cannot fix (docs/production.md,
	// "Start-up failures"): restarting on it every RestartSec only fills
	// the journal; any other failure is restarted.
	if r := svc["Restart"]; len(r) != 1 || r[0] != "on-failure" {
		t.Errorf("Restart=%q; want on-failure", r)
	}
	if p := svc["RestartPreventExitStatus"]; len(p) != 1 || p[0] != "2" {
		t.Errorf("RestartPreventExitStatus=%q; want 2 (an error a restart cannot fix)", p)
	}
	if f := svc["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q; want @system-service first", f)
	}

	t.Run("master key comes from a credential", func(t *testing.T) {
		creds := svc["LoadCredential"]
		if len(creds) != 1 {
			t.Fatalf("LoadCredential=%q; want one, for the master key", creds)
		}
		name, _, ok := strings.Cut(creds[0], ":")
		if !ok || name == "" {
			t.Fatalf("LoadCredential=%q; want name:path", creds[0])
		}
		want := config.EnvName("master_key_file") + "=%d/" + name
		if !contains(svc["Environment"], want) {
			t.Errorf("Environment=%q; want %s (the credential directory)", svc["Environment"], want)
		}
	})

	t.Run("ExecStart uses real flags", func(t *testing.T) {
		exec := svc["ExecStart"]
		if len(exec) != 1 {
			t.Fatalf("ExecStart=%q; want one", exec)
		}
		argv := strings.Fields(exec[0])
		if len(argv) < 2 || argv[0] != "/usr/local/bin/sts" || argv[1] != "serve" {
			t.Fatalf("ExecStart=%q; want /usr/local/bin/sts serve …", exec[0])
		}
		if !strings.Contains(exec[0], "--data-dir ${STATE_DIRECTORY}") {
			t.Errorf("ExecStart=%q does not put the data in the state directory", exec[0])
		}
		// Every --flag in ExecStart must be one `sts serve` accepts.
		var stdout, stderr bytes.Buffer
		if code := cli.Main(context.Background(), []string{"serve", "--help"}, &stdout, &stderr); code != 0 {
			t.Fatalf("sts serve --help: exit %d: %s", code, stderr.String())
		}
		for _, a := range argv[2:] {
			if flag, ok := strings.CutPrefix(a, "--"); ok {
				flag, _, _ = strings.Cut(flag, "=")
				if !strings.Contains(stdout.String(), "--"+flag+" ") {
					t.Errorf("ExecStart flag --%s is not a flag of sts serve", flag)
				}
			}
		}
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze not installed; static checks only")
		}
		// verify insists that ExecStart exists; point it at this test
		// binary, which does.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(t.TempDir(), "sts.service")
		text := strings.Replace(string(data), "ExecStart=/usr/local/bin/sts ", "ExecStart="+self+" ", 1)
		if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, analyze, "verify", unit).CombinedOutput()
		// verify exits 0 on unknown keys and bad values (it ignores them
		// with a warning), so any output about the unit is a failure too.
		if err != nil || strings.Contains(string(out), "sts.service") {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
