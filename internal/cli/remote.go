package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/opensts/sts/internal/app"
	"github.com/opensts/sts/internal/config"
	"github.com/opensts/sts/internal/storage/sqlstore"
)

// Administration has two modes, chosen here and nowhere else: with
// --server (or STS_SERVER) a command calls the admin API of a running
// server as the principal whose PAT or access token is in STS_TOKEN, with
// that principal's rights; without, it opens the database with the master
// key (bootstrap, break-glass). Each noun has a small interface (orgAdmin,
// principalAdmin, …) with a remote and a direct implementation, both
// answering with the API's objects, so the two modes print the same thing.

// directNote ends the --server usage of every admin command.
const directNote = "Without --server this opens the database directly (bootstrap, break-glass)."

// adminNoun gives a noun command the shared flags of its subcommands:
// --server and --output.
func adminNoun(cmd *cobra.Command) *cobra.Command {
	addAdminFlags(cmd.PersistentFlags())
	if cmd.Long == "" {
		cmd.Long = cmd.Short + "."
	}
	cmd.Long += "\n\nWith --server URL (or STS_SERVER) every subcommand calls the admin API of that\nserver as the principal whose token is in STS_TOKEN. " + directNote
	return cmd
}

// adminFlags gives one command --server and --output, for nouns whose
// other subcommands work on files or the database only (keys, audit).
func adminFlags(cmd *cobra.Command) *cobra.Command {
	addAdminFlags(cmd.Flags())
	return cmd
}

func addAdminFlags(f *pflag.FlagSet) {
	f.String("server", "", "base URL of a running sts server, whose admin API the command calls with the bearer token in STS_TOKEN or --token-file (env STS_SERVER). "+directNote)
	envDefault(f, "server", "STS_SERVER")
	f.String("token-file", "", "with --server: file holding the bearer token, instead of STS_TOKEN; readable by its owner only (env STS_TOKEN_FILE)")
	envDefault(f, "token-file", "STS_TOKEN_FILE")
	addCAFlag(f)
	addTimeoutFlag(f)
	f.StringP("output", "o", "table", "output format: table or json")
}

// outputJSON reports whether --output json was asked for; any value but
// table and json is a usage error.
func outputJSON(cmd *cobra.Command) (bool, error) {
	o, err := cmd.Flags().GetString("output")
	if err != nil {
		return false, nil // a command without --output prints text
	}
	switch o {
	case "table", "text", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, usageError{fmt.Errorf("--output %q: want table or json", o)}
}

// remote is a running server's admin API: its base URL and an HTTP client
// that sends the bearer token.
type remote struct {
	base string
	http connect.HTTPClient
}

// maxAnswer bounds one answer of the server, as decoded: far above any
// list the API returns, far below what would exhaust a workstation's
// memory when a server (or whatever answers an http:// --server) sends an
// endless body or a small gzip body that inflates to gigabytes
// (docs/security.md T-245).
const maxAnswer = 16 << 20

// opts are the options of every Connect client of remote mode: answers
// are read up to maxAnswer and are not asked for compressed (connect's
// gzip would inflate a whole answer to report its size).
func (r *remote) opts() []connect.ClientOption {
	return []connect.ClientOption{connect.WithReadMaxBytes(maxAnswer), connect.WithAcceptCompression("gzip", nil, nil)}
}

// defaultTimeout bounds each call of remote mode without --timeout.
const defaultTimeout = 30 * time.Second

// addTimeoutFlag adds --timeout (env STS_TIMEOUT), read by newRemote. It
// is a string parsed there, so that a bad STS_TIMEOUT is refused like a
// bad flag instead of being dropped for the default.
func addTimeoutFlag(f *pflag.FlagSet) {
	f.String("timeout", config.FormatDuration(defaultTimeout), "with --server: how long each call to the server may take, e.g. 10s or 2m (env STS_TIMEOUT)")
	envDefault(f, "timeout", "STS_TIMEOUT")
}

// remoteTimeout is --timeout (or STS_TIMEOUT): a positive duration.
func remoteTimeout(cmd *cobra.Command) (time.Duration, error) {
	v, _ := cmd.Flags().GetString("timeout")
	if strings.TrimSpace(v) == "" {
		return defaultTimeout, nil
	}
	d, err := config.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, usageError{fmt.Errorf("--timeout (or STS_TIMEOUT): %w", err)}
	}
	if d <= 0 {
		return 0, usageError{fmt.Errorf("--timeout (or STS_TIMEOUT) %s: want a positive duration, e.g. 30s", v)}
	}
	return d, nil
}

// timeoutClient is the HTTP client of remote mode, whose Timeout bounds
// each call; a call cut off by it says so, with the bound and how to
// change it, instead of net/http's "Client.Timeout exceeded" alone.
type timeoutClient struct {
	c *http.Client
}

func (t timeoutClient) Do(r *http.Request) (*http.Response, error) {
	res, err := t.c.Do(r)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		err = fmt.Errorf("no answer from the server within %s (--timeout, STS_TIMEOUT): %w", config.FormatDuration(t.c.Timeout), err)
	}
	if res != nil {
		// connect stops decoding at maxAnswer but then reads the rest of
		// the body to its end; this stops the reading itself.
		res.Body = &cappedBody{ReadCloser: res.Body, left: maxAnswer + 1}
	}
	return res, err
}

// cappedBody fails a read past its bound instead of reading on.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("the server's answer is larger than %d MiB", maxAnswer>>20)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}

// bearerTransport adds the Authorization header to the requests for the
// --server origin (scheme and host) and to no other: the token is that
// server's (docs/security.md T-100).
type bearerTransport struct {
	token        string
	scheme, host string
	next         http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == b.scheme && r.URL.Host == b.host {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

// noRedirects refuses to follow a redirect: the admin API never sends
// one, and following it would take the request (and, were the transport
// less careful, the token) to wherever the answer says.
func noRedirects(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("--server redirected to %s://%s; sts does not follow redirects with STS_TOKEN: point --server at the API itself", req.URL.Scheme, req.URL.Host)
}

// addCAFlag adds --ca-file (env STS_CA_FILE), read by newRemote.
func addCAFlag(f *pflag.FlagSet) {
	f.String("ca-file", "", "with --server: PEM bundle of CA certificates to trust, beside the system roots, for that server (env STS_CA_FILE)")
	envDefault(f, "ca-file", "STS_CA_FILE")
}

// newRemote is the connection of every command that calls a running
// server (--server, or STS_SERVER): its HTTP client sends tok to that
// origin only, follows no redirect and gives up on a call after --timeout
// (30 s by default), trusts the
// CAs of --ca-file beside the system roots, and a token about to cross a
// network in plain text is warned about (docs/security.md T-100, T-161).
func newRemote(cmd *cobra.Command, server, tok string) (*remote, error) {
	// The raw value is never printed: its user information, query or
	// fragment may hold a secret, even when it is no URL at all.
	u, err := url.Parse(server)
	if err != nil {
		return nil, usageError{errors.New("--server is not a URL: want an http:// or https:// URL (the value is not printed)")}
	}
	if u.Scheme = strings.ToLower(u.Scheme); u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, usageError{fmt.Errorf("--server %s: want an http:// or https:// URL with a host (the rest of the value is not printed)", shownURL(u))}
	}
	// The API's paths are appended to --server: a query or fragment would
	// swallow them, and user information would be dropped for the bearer
	// token. Neither is printed: either may hold a secret.
	switch {
	case u.User != nil:
		return nil, usageError{fmt.Errorf("--server %s://%s: remove the user information before the host; the credential goes in STS_TOKEN or --token-file", u.Scheme, u.Host)}
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(server, "#"):
		return nil, usageError{fmt.Errorf("--server %s://%s: remove the query or fragment: want the server's base URL", u.Scheme, u.Host)}
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "sts: warning: STS_TOKEN goes to %s in plain text; use https\n", u.Host)
	}
	timeout, err := remoteTimeout(cmd)
	if err != nil {
		return nil, err
	}
	next := http.DefaultTransport
	if caFile, _ := cmd.Flags().GetString("ca-file"); strings.TrimSpace(caFile) != "" {
		if next, err = caTransport(strings.TrimSpace(caFile)); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{Timeout: timeout, CheckRedirect: noRedirects,
		Transport: bearerTransport{token: tok, scheme: u.Scheme, host: u.Host, next: next}}
	return &remote{base: strings.TrimSuffix(u.String(), "/"), http: timeoutClient{hc}}, nil
}

// shownURL is the scheme and host of u, for a message about a --server
// value that is refused: never its user information, path or query.
func shownURL(u *url.URL) string {
	if u.Scheme == "" || u.Host == "" {
		return "(no scheme and host)"
	}
	return u.Scheme + "://" + u.Host
}

// admin is an admin command's connection: remote when --server is set,
// else the database (store, cfg).
type admin struct {
	remote *remote
	store  *sqlstore.Store
	cfg    config.Config
	stderr io.Writer // warnings of direct mode
}

// openAdmin is the mode switch: the API of --server, or the database.
// The caller defers close.
func openAdmin(cmd *cobra.Command) (*admin, error) {
	server, _ := cmd.Flags().GetString("server")
	if server = strings.TrimSpace(server); server != "" {
		file, _ := cmd.Flags().GetString("token-file")
		tok, err := remoteToken(cmd, file)
		if err != nil {
			return nil, err
		}
		r, err := newRemote(cmd, server, tok)
		if err != nil {
			return nil, err
		}
		return &admin{remote: r}, nil
	}
	// A flag of remote mode given without --server would be ignored for
	// the database and the master key: the operator meant the API. So
	// would its variable, exported beside a STS_SERVER that is not
	// (docs/security.md T-169). Neither message prints the value.
	for _, name := range []string{"token-file", "ca-file"} {
		if cmd.Flags().Changed(name) {
			return nil, usageError{fmt.Errorf("--%s needs --server (or STS_SERVER): without it the command opens the database directly", name)}
		}
		if v, _ := cmd.Flags().GetString(name); strings.TrimSpace(v) != "" {
			env := "STS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			return nil, usageError{fmt.Errorf("%s is set but STS_SERVER (or --server) is not: without a server the command opens the database directly; set STS_SERVER, or unset %s for direct mode", env, env)}
		}
	}
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	store, err := openStore(cmd.Context(), cfg)
	if err != nil {
		return nil, err
	}
	return &admin{store: store, cfg: cfg, stderr: cmd.ErrOrStderr()}, nil
}

// openStore opens and checks the configured storage: the one place
// direct mode opens it (openAdmin, withStore, login-link). A SQLite
// database must exist already; only serve and migrate create one
// (docs/cli.md "Commands and modes").
func openStore(ctx context.Context, cfg config.Config) (*sqlstore.Store, error) {
	if err := requireDatabase(cfg); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if app.UsesDataDir(cfg, false) {
		if err := app.PrepareDataDir(cfg.DataDir); err != nil {
			return nil, err
		}
	}
	store, err := app.OpenStorage(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	if err := store.Health(ctx); err != nil {
		store.Close()
		if errors.Is(err, sqlstore.ErrSchemaNewer) {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return nil, fmt.Errorf("storage: %w (run sts migrate first?)", err)
	}
	return store, nil
}

// requireDatabase refuses a SQLite storage.path with no database behind
// it, before anything opens it: opening would create an empty database,
// and the data directory, and fail on the missing tables.
func requireDatabase(cfg config.Config) error {
	if cfg.Storage.Type != sqlstore.DriverSQLite {
		return nil
	}
	if _, err := os.Stat(cfg.Storage.Path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no database at %s (check storage.path or --data-dir)", cfg.Storage.Path)
	} else if err != nil {
		return err
	}
	return nil
}

// isLoopback reports whether host is this machine (no network sees the
// token).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *admin) close() {
	if a.store != nil {
		a.store.Close()
	}
}

// runAdmin opens the connection, runs fn and turns an API error into
// "<code>: <message>".
func runAdmin(cmd *cobra.Command, fn func(ctx context.Context, a *admin) error) error {
	if _, err := outputJSON(cmd); err != nil {
		return err
	}
	a, err := openAdmin(cmd)
	if err != nil {
		return err
	}
	defer a.close()
	return apiError(fn(cmd.Context(), a))
}

// apiError prints a Connect error as its code and message only: no
// wrapping, no details (the message names a missing scope when the
// server says which). The message is the server's text: a control
// character in it is printed escaped, on one line (docs/security.md
// T-244). Other errors pass unchanged.
func apiError(err error) error {
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		msg := ce.Message()
		if msg == "" {
			msg = ce.Code().String()
		}
		if ce.Code() == connect.CodeResourceExhausted && strings.Contains(msg, fmt.Sprintf("larger than configured max %d", maxAnswer)) {
			msg = fmt.Sprintf("the server's answer is larger than %d MiB, the most sts reads of one answer; nothing was printed", maxAnswer>>20)
		}
		return fmt.Errorf("%s: %s", ce.Code(), printable(msg))
	}
	return err
}

// printJSON writes v as indented JSON; API objects go through apiJSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", jsonForTerminal(b))
	return err
}

// jsonForTerminal escapes in JSON text b what encoding/json leaves as
// is but a terminal may act on (see printable): the C1 controls (U+009B
// is CSI) and the bidirectional overrides. They can only occur inside
// strings, so the text decodes to the same values (docs/security.md
// T-244).
func jsonForTerminal(b []byte) []byte {
	s := string(b)
	if !strings.ContainsFunc(s, unprintable) {
		return b
	}
	var out strings.Builder
	for _, r := range s {
		if r >= 0x80 && unprintable(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
			continue
		}
		out.WriteRune(r)
	}
	return []byte(out.String())
}

// printObjects writes one API object (show) or a JSON array of them
// (list, even when empty) in the --output json form; see apiJSON.
func printObjects[M proto.Message](w io.Writer, list []M, one bool) error {
	out := make([]map[string]any, 0, len(list))
	for _, m := range list {
		v, err := apiJSON(m)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	if one {
		if len(out) != 1 {
			return fmt.Errorf("internal: %d objects for one", len(out))
		}
		return printJSON(w, out[0])
	}
	return printJSON(w, out)
}

// apiJSON is the stable JSON form of an API object (docs/cli.md): its
// protojson encoding (lowerCamelCase field names, RFC 3339 times, every
// field present) with enum values as words ("user", "pat", "active")
// instead of their protobuf names.
func apiJSON(m proto.Message) (map[string]any, error) {
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	enumWords(m.ProtoReflect(), v)
	return v, nil
}

// enumWords rewrites the enum values of v, the protojson map of m, as
// words, in nested messages too.
func enumWords(m protoreflect.Message, v map[string]any) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		val, ok := v[fd.JSONName()]
		if !ok || fd.IsMap() {
			continue
		}
		switch fd.Kind() {
		case protoreflect.EnumKind:
			if list, ok := val.([]any); ok {
				for j, e := range list {
					list[j] = enumWordOf(fd.Enum(), e)
				}
			} else {
				v[fd.JSONName()] = enumWordOf(fd.Enum(), val)
			}
		case protoreflect.MessageKind:
			if strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
				continue
			}
			if list, ok := val.([]any); ok {
				l := m.Get(fd).List()
				for j := 0; j < l.Len() && j < len(list); j++ {
					if sub, ok := list[j].(map[string]any); ok {
						enumWords(l.Get(j).Message(), sub)
					}
				}
			} else if sub, ok := val.(map[string]any); ok {
				enumWords(m.Get(fd).Message(), sub)
			}
		}
	}
}

func enumWordOf(ed protoreflect.EnumDescriptor, val any) any {
	name, ok := val.(string)
	if !ok {
		return val // an unknown number stays a number
	}
	return wordOf(ed, name)
}

// enumWord is e as a word: its value name without the enum's prefix, in
// lower case, "_" as "-" (client authentication methods keep OAuth's
// names, e.g. client_secret_basic).
func enumWord(e protoreflect.Enum) string {
	v := e.Descriptor().Values().ByNumber(e.Number())
	if v == nil {
		return fmt.Sprint(int32(e.Number()))
	}
	return wordOf(e.Descriptor(), string(v.Name()))
}

func wordOf(ed protoreflect.EnumDescriptor, name string) string {
	w := strings.ToLower(strings.TrimPrefix(name, upperSnake(string(ed.Name()))+"_"))
	if ed.FullName() == "sts.v1.ClientAuthMethod" {
		return w
	}
	return strings.ReplaceAll(w, "_", "-")
}

// upperSnake turns an enum type name (HostAuthenticationTokenSource) into
// its value prefix (HOST_AUTHENTICATION_TOKEN_SOURCE).
func upperSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// enumFromWord is the inverse of enumWord for flag values: the value of
// ed named by word ("service-account" or "service_account"), or false.
func enumFromWord(ed protoreflect.EnumDescriptor, word string) (protoreflect.EnumNumber, bool) {
	name := upperSnake(string(ed.Name())) + "_" + strings.ToUpper(strings.ReplaceAll(word, "-", "_"))
	v := ed.Values().ByName(protoreflect.Name(name))
	if v == nil || v.Number() == 0 {
		return 0, false
	}
	return v.Number(), true
}

// stampPB is stamp for an API timestamp.
func stampPB(t interface{ AsTime() time.Time }) string {
	if t == nil {
		return "-"
	}
	if ts, ok := t.(*timestamppb.Timestamp); ok && ts == nil {
		return "-"
	}
	return stamp(t.AsTime())
}

// flagAliases keeps the old flag names of the pool commands working as
// aliases of the shared vocabulary (--org, repeatable --scope and
// --audience); help shows the new names only.
func flagAliases(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "organization":
		name = "org"
	case "scopes":
		name = "scope"
	case "audiences":
		name = "audience"
	}
	return pflag.NormalizedName(name)
}
