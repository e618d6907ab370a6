package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/opensts/sts/internal/cli"
	"github.com/opensts/sts/internal/config"
)

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, USER, …
	args string
	line int
}

// stage is the instructions from one FROM to the next.
type stage struct {
	base string
	name string
	ins  []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur strings.Builder
	start := 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if len(stages) == 0 {
		t.Fatalf("%s: no FROM", path)
	}
	return stages
}

// execForm parses a JSON exec-form argument list such as ["/sts","serve"].
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(in.args), &argv); err != nil {
		t.Fatalf("Dockerfile:%d: %s %s is not exec form (a JSON list): there is no shell in the image", in.line, in.cmd, in.args)
	}
	return argv
}

// shellless reports whether an image base has no shell: distroless static
// or scratch. A shell in the final image is an attacker's first tool.
func shellless(base string) bool {
	return base == "scratch" ||
		strings.HasPrefix(base, "gcr.io/distroless/static") ||
		strings.HasPrefix(base, "cgr.dev/chainguard/static")
}

// nonRootBase reports whether an image base runs as a non-root user by
// default, for ko, which has no USER instruction of its own.
func nonRootBase(base string) bool {
	return strings.HasPrefix(base, "cgr.dev/chainguard/static") ||
		(strings.HasPrefix(base, "gcr.io/distroless/static") && strings.Contains(base, ":nonroot"))
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s); want a builder and a final stage", len(stages))
	}
	final := stages[len(stages)-1]

	t.Run("builder is static and trimmed", func(t *testing.T) {
		var build string
		for _, in := range stages[0].all("RUN") {
			if strings.Contains(in.args, "go build") {
				build = in.args
			}
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/sts", "internal/cli.version="} {
			if !strings.Contains(build, want) {
				t.Errorf("builder's go build %q lacks %q", build, want)
			}
		}
	})

	t.Run("final stage has no shell", func(t *testing.T) {
		if !shellless(final.base) {
			t.Errorf("final stage FROM %s; want distroless/static or scratch", final.base)
		}
		if len(final.all("RUN")) > 0 {
			t.Errorf("final stage has RUN, which needs a shell")
		}
	})

	t.Run("runs as non-root", func(t *testing.T) {
		users := final.all("USER")
		if len(users) == 0 {
			t.Fatal("final stage sets no USER")
		}
		u := users[len(users)-1].args
		name, _, _ := strings.Cut(u, ":")
		if name == "" || name == "0" || name == "root" {
			t.Errorf("final USER %q is root", u)
		}
	})

	t.Run("data lives on a volume", func(t *testing.T) {
		var vol bool
		for _, in := range final.all("VOLUME") {
			vol = vol || in.args == "/data" || in.args == `["/data"]`
		}
		if !vol {
			t.Error("final stage has no VOLUME /data")
		}
	})

	t.Run("environment names real settings", func(t *testing.T) {
		env := map[string]string{}
		for _, in := range final.all("ENV") {
			k, v, ok := strings.Cut(in.args, "=")
			if !ok {
				t.Errorf("Dockerfile:%d: ENV %s: use KEY=value", in.line, in.args)
				continue
			}
			env[k] = v
		}
		if got := env[config.EnvName("data_dir")]; got != "/data" {
			t.Errorf("%s=%q; want /data", config.EnvName("data_dir"), got)
		}
		// The default listener is loopback only; in a container nothing
		// outside could reach it.
		listen := env[config.EnvName("listen")]
		if !strings.HasPrefix(listen, "0.0.0.0:") && !strings.HasPrefix(listen, ":") {
			t.Errorf("%s=%q; want every interface, such as 0.0.0.0:8080", config.EnvName("listen"), listen)
		}
		for k := range env {
			if !strings.HasPrefix(k, "STS_") {
				continue
			}
			known := false
			for _, key := range config.Keys() {
				known = known || config.EnvName(key) == k
			}
			if !known {
				t.Errorf("ENV %s is not an sts setting", k)
			}
		}
		ports := final.all("EXPOSE")
		if len(ports) != 1 || !strings.HasSuffix(listen, ":"+ports[0].args) {
			t.Errorf("EXPOSE %v does not match listen %q", ports, listen)
		}
	})

	t.Run("entrypoint and healthcheck are the binary", func(t *testing.T) {
		entry := final.all("ENTRYPOINT")
		if len(entry) != 1 {
			t.Fatalf("final stage has %d ENTRYPOINT; want 1", len(entry))
		}
		if argv := execForm(t, entry[0]); len(argv) != 1 || argv[0] != "/sts" {
			t.Errorf("ENTRYPOINT %v; want [\"/sts\"]", argv)
		}
		if cmd := final.all("CMD"); len(cmd) != 1 || strings.Join(execForm(t, cmd[0]), " ") != "serve" {
			t.Errorf("CMD %v; want [\"serve\"]", cmd)
		}
		var copied bool
		for _, in := range final.all("COPY") {
			copied = copied || strings.HasSuffix(in.args, " /sts")
		}
		if !copied {
			t.Error("final stage does not COPY the binary to /sts")
		}
		hc := final.all("HEALTHCHECK")
		if len(hc) != 1 {
			t.Fatalf("final stage has %d HEALTHCHECK; want 1", len(hc))
		}
		_, probe, ok := strings.Cut(hc[0].args, "CMD ")
		if !ok {
			t.Fatalf("HEALTHCHECK %q has no CMD", hc[0].args)
		}
		argv := execForm(t, instruction{cmd: "HEALTHCHECK CMD", args: strings.TrimSpace(probe), line: hc[0].line})
		if len(argv) < 2 || argv[0] != "/sts" || argv[1] != "healthcheck" {
			t.Fatalf("HEALTHCHECK runs %v; want /sts healthcheck", argv)
		}
		// The command exists in this binary and its default URL uses the
		// exposed port.
		var stdout, stderr bytes.Buffer
		if code := cli.Main(context.Background(), append(argv[1:], "--help"), &stdout, &stderr); code != 0 {
			t.Fatalf("sts %v --help: exit %d: %s", argv[1:], code, stderr.String())
		}
		if ports := final.all("EXPOSE"); len(ports) == 1 && !strings.Contains(cli.DefaultHealthcheckURL, ":"+ports[0].args+"/") {
			t.Errorf("healthcheck default URL %s does not use the exposed port %s", cli.DefaultHealthcheckURL, ports[0].args)
		}
	})
}

func TestKoConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", ".ko.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ko struct {
		DefaultBaseImage string `yaml:"defaultBaseImage"`
		Builds           []struct {
			ID      string   `yaml:"id"`
			Main    string   `yaml:"main"`
			Env     []string `yaml:"env"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&ko); err != nil {
		t.Fatalf(".ko.yaml: %v", err)
	}
	if !shellless(ko.DefaultBaseImage) || !nonRootBase(ko.DefaultBaseImage) {
		t.Errorf("defaultBaseImage %q; want a shell-less, non-root base", ko.DefaultBaseImage)
	}
	if len(ko.Builds) != 1 || ko.Builds[0].Main != "./cmd/sts" {
		t.Fatalf("builds %+v; want one build of ./cmd/sts", ko.Builds)
	}
	b := ko.Builds[0]
	if !strings.Contains(strings.Join(b.Env, " "), "CGO_ENABLED=0") {
		t.Errorf("build env %v lacks CGO_ENABLED=0", b.Env)
	}
	if !strings.Contains(strings.Join(b.Flags, " "), "-trimpath") {
		t.Errorf("build flags %v lack -trimpath", b.Flags)
	}
	if !strings.Contains(strings.Join(b.Ldflags, " "), "github.com/opensts/sts/internal/cli.version=") {
		t.Errorf("ldflags %v do not set the version", b.Ldflags)
	}
}

// TestStaticBuild builds the binary the way the image does and runs it: it
// must link without cgo, have no dynamic loader, and report its version.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "sts")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-X github.com/opensts/sts/internal/cli.version=v0.0.0-deploytest",
		"-o", bin, "./cmd/sts")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("open built binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has a dynamic loader (PT_INTERP); a distroless/static image cannot run it")
		}
	}

	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("sts version: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "sts v0.0.0-deploytest") {
		t.Fatalf("sts version printed %q; want the ldflags version", out)
	}
}
