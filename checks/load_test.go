package checks_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	. "github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe/dnsprobe"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// mustParse loads config text that must be valid.
func mustParse(t *testing.T, yml string, getenv func(string) (string, bool)) *Config {
	t.Helper()
	cfg, err := Parse([]byte(yml), filepath.Join(t.TempDir(), "vantage.yaml"), getenv)
	if err != nil {
		t.Fatalf("unexpected errors:\n%v", err)
	}
	return cfg
}

// parseErrs loads config text that must be invalid and returns its errors.
func parseErrs(t *testing.T, yml string, getenv func(string) (string, bool)) Errors {
	t.Helper()
	_, err := Parse([]byte(yml), "c.yaml", getenv)
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %T %v", err, err)
	}
	return es
}

func hasMsg(es Errors, line string) bool {
	for _, e := range es {
		if e.Error() == line {
			return true
		}
	}
	return false
}

// TestInvalidFixtures loads every testdata/invalid-*.yaml and requires the
// exact error its first line announces.
func TestInvalidFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil || len(files) < 50 {
		t.Fatalf("fixtures missing: %v %d", err, len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(fh)
			sc.Scan()
			want, ok := strings.CutPrefix(sc.Text(), "# want: ")
			if !ok {
				t.Fatalf("first line must be `# want: ...`, got %q", sc.Text())
			}
			sc.Scan()
			fh.Close()
			lim := fixtureLimits(t, sc.Text())
			cfg, err := LoadWithLimits(f, noEnv, lim)
			if err == nil {
				t.Fatalf("loaded without errors (%d checks), want %s", len(cfg.Checks), want)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if !hasMsg(es, want) {
				t.Fatalf("want error\n  %s\ngot\n  %s", want, strings.ReplaceAll(es.Error(), "\n", "\n  "))
			}
			for _, e := range es {
				if e.Pos.File == "" {
					t.Errorf("error without file: %v", e)
				}
			}
		})
	}
}

// fixtureLimits reads an optional second fixture line such as
// `# limits: --config.max-checks=2`, so limit rules are tested with small
// files.
func fixtureLimits(t *testing.T, line string) Limits {
	t.Helper()
	lim := DefaultLimits
	flags, ok := strings.CutPrefix(line, "# limits: ")
	if !ok {
		return lim
	}
	for _, f := range strings.Fields(flags) {
		name, val, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		n, err := strconv.Atoi(val)
		if err != nil {
			t.Fatalf("limits line: %q: %v", f, err)
		}
		switch name {
		case FlagMaxFileSize:
			lim.MaxFileSize = ByteSize(n)
		case FlagMaxChecks:
			lim.MaxChecks = n
		case FlagMaxTargets:
			lim.MaxTargets = n
		case FlagMaxYAMLNodes:
			lim.MaxYAMLNodes = n
		default:
			t.Fatalf("limits line: unknown flag %q", name)
		}
	}
	return lim
}

func TestValidFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid-*.yaml")
	files = append(files, "../config.example.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f, noEnv)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(cfg.Checks) == 0 {
				t.Fatal("no checks loaded")
			}
			if cfg.Secrets == nil {
				t.Fatal("Secrets is nil")
			}
		})
	}
}

func TestExampleConfig(t *testing.T) {
	cfg, err := Load("../config.example.yaml", noEnv)
	if err != nil {
		t.Fatalf("config.example.yaml:\n%v", err)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Msg, "is ignored") {
			t.Errorf("the example uses a deprecated spelling: %v", w)
		}
	}
	byName := map[string]*Check{}
	for i := range cfg.Checks {
		byName[cfg.Checks[i].Name] = &cfg.Checks[i]
	}
	app := byName["app-checkout"]
	if app == nil || len(httpOf(app).Steps) != 3 {
		t.Fatalf("app-checkout steps missing: %+v", app)
	}
	if got := httpOf(app).Steps[0].Body; got != `{"user":"synthetic","password":"change-me"}` {
		t.Errorf("login body default not expanded: %q", got)
	}
	if httpOf(app).Steps[2].Name != "03-get" {
		t.Errorf("unnamed http step named %q, want 03-get", httpOf(app).Steps[2].Name)
	}
	web := byName["web-checkout"]
	if browserOf(web).Steps[2].Name != "03-wait_visible" || browserOf(web).Steps[0].Name != "01-navigate" {
		t.Errorf("browser step names: %q %q", browserOf(web).Steps[0].Name, browserOf(web).Steps[2].Name)
	}
	if browserOf(web).Steps[7].Sleep != model.Duration(500*time.Millisecond) {
		t.Errorf("sleep = %v", browserOf(web).Steps[7].Sleep)
	}
	if got := httpOf(byName["shop-home"]).HTTP.MaxBodyBytes; got != 10<<20 {
		t.Errorf("max_body_bytes = %d", got)
	}
	lb := byName["lb-nodes"].Nodes.Addresses
	// global.node_names names the listed addresses that have no name.
	if len(lb) != 3 || lb[0].Label() != "lb1" || lb[1].Label() != "lb2" || lb[2].Label() != "lb3" || lb[2].Address != "10.0.0.13:8443" {
		t.Errorf("node addresses: %+v", lb)
	}
	if cfg.Notifiers[1].URL != "http://127.0.0.1:9095/hook" {
		t.Errorf("webhook url default: %q", cfg.Notifiers[1].URL)
	}
	if cfg.Paths[4].Resolver != "9.9.9.9:53" || cfg.Paths[4].IPVersion != 4 {
		t.Errorf("public-dns path: %+v", cfg.Paths[4])
	}
	if a := cfg.Alerts[0]; a.Expr != (Expr{Measure: "p99", Op: ">", Value: 1.5}) {
		t.Errorf("expr = %+v", a.Expr)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, `
checks:
  - name: home
    type: http
    url: https://www.shop.test/
  - name: fast
    type: tcp
    address: www.shop.test:443
    interval: 5s
  - name: web
    type: browser
    steps: [{navigate: "https://www.shop.test/"}, {click: "#buy"}]
  - name: ns
    type: dns
    query: {name: www.shop.test, server: 127.0.0.53}
alerts:
  - name: Down
    when: success_ratio < 0.5
notifiers:
  - name: am
    type: alertmanager
    url: http://127.0.0.1:9093
`, noEnv)
	g := cfg.Global
	if g.Interval != model.Duration(30*time.Second) || g.Timeout != model.Duration(10*time.Second) ||
		g.DownAfter != 2 || g.UpAfter != 2 || g.MaxDomainsPerCheck != 50 || g.FlapWindow != model.Duration(time.Hour) ||
		!slices.Equal(g.QuantileWindows, []model.Duration{model.Duration(5 * time.Minute), model.Duration(time.Hour)}) {
		t.Errorf("global defaults: %+v", g)
	}
	if len(cfg.Paths) != 1 || cfg.Paths[0].Name != "direct" {
		t.Fatalf("implicit path: %+v", cfg.Paths)
	}
	home, fast, web, ns := cfg.Checks[0], cfg.Checks[1], cfg.Checks[2], cfg.Checks[3]
	if home.Interval != g.Interval || home.Timeout != g.Timeout || !slices.Equal(home.Paths, []string{"direct"}) {
		t.Errorf("check defaults: %+v", home)
	}
	h := httpOf(home).HTTP
	if h == nil || h.Method != "GET" || h.FollowRedirects == nil || !*h.FollowRedirects || h.MaxRedirects != 10 || h.MaxBodyBytes != 10<<20 {
		t.Errorf("http defaults: %+v", h)
	}
	if fast.Interval != model.Duration(5*time.Second) || fast.Timeout != model.Duration(4*time.Second) {
		t.Errorf("short interval: inherited timeout %v must be capped below %v", fast.Timeout, fast.Interval)
	}
	if browserOf(web).Screenshot != "on_failure" || browserOf(web).Steps[0].Name != "01-navigate" || browserOf(web).Steps[1].Name != "02-click" {
		t.Errorf("browser defaults: %q %q %q", browserOf(web).Screenshot, browserOf(web).Steps[0].Name, browserOf(web).Steps[1].Name)
	}
	if q := ns.Spec.(*dnsprobe.Config).Query; q.Type != "A" || q.Server != "127.0.0.53:53" {
		t.Errorf("dns defaults: %+v", q)
	}
	a := cfg.Alerts[0]
	if a.Window != model.Duration(5*time.Minute) || !slices.Equal(a.By, []string{"check", "path", "node"}) ||
		a.Severity != "warning" || !slices.Equal(a.Notify, []string{"am"}) {
		t.Errorf("alert defaults: %+v", a)
	}
	n := cfg.Notifiers[0]
	if n.SendResolved == nil || !*n.SendResolved || n.RepeatInterval == nil || *n.RepeatInterval != model.Duration(4*time.Hour) ||
		n.ResendInterval != model.Duration(time.Minute) || n.MaxAge != model.Duration(6*time.Hour) ||
		n.Timeout != model.Duration(10*time.Second) || !n.HTTPConfig.FollowRedirects {
		t.Errorf("notifier defaults: %+v", n)
	}
	// The exported defaults must not be aliased by loaded configs.
	*h.FollowRedirects = false
	cfg.Global.QuantileWindows[0] = 1
	a.By[0] = "x"
	if !*httpprobe.DefaultHTTPRequest.FollowRedirects || DefaultGlobal.QuantileWindows[0] != model.Duration(5*time.Minute) || DefaultAlert.By[0] != "check" {
		t.Fatal("loaded config aliases the package defaults")
	}
}

func TestExplicitValuesOverrideDefaults(t *testing.T) {
	cfg := mustParse(t, `
global:
  quantile_windows: [1m, 10m]
checks:
  - name: home
    type: http
    url: https://www.shop.test/
    http: {follow_redirects: false, max_body_bytes: 512KB}
    paths: [direct]
alerts:
  - name: Slow
    when: p90 >= 800ms
    notify: []
    by: [check]
notifiers:
  - name: am
    type: alertmanager
    url: http://127.0.0.1:9093
    send_resolved: false
    repeat_interval: 0s
`, noEnv)
	if *httpOf(cfg.Checks[0]).HTTP.FollowRedirects || httpOf(cfg.Checks[0]).HTTP.MaxBodyBytes != 512000 || httpOf(cfg.Checks[0]).HTTP.Method != "GET" {
		t.Errorf("http: %+v", httpOf(cfg.Checks[0]).HTTP)
	}
	a := cfg.Alerts[0]
	if a.Window != model.Duration(time.Minute) || len(a.Notify) != 0 || a.Expr.Value != 0.8 || a.Expr.Op != ">=" {
		t.Errorf("alert: %+v", a)
	}
	if *cfg.Notifiers[0].SendResolved || *cfg.Notifiers[0].RepeatInterval != 0 {
		t.Errorf("notifier: %+v", cfg.Notifiers[0])
	}
}

func TestEnvExpansion(t *testing.T) {
	env := envOf(map[string]string{"HOST": "www.shop.test", "DOWN": "3", "PW": "hunter2-secret", "EMPTY": ""})
	cfg := mustParse(t, `
global:
  down_after: ${DOWN}
  location: ${LOC:-ams1}
  labels: {cost: "$$5", empty: "${EMPTY:-fallback}", raw: "${EMPTY}"}
checks:
  - name: home
    type: http
    url: https://${HOST}/
    http:
      basic_auth: {username: synthetic, password: "${PW}"}
`, env)
	g := cfg.Global
	if g.DownAfter != 3 || g.Location != "ams1" || g.Labels["cost"] != "$5" || g.Labels["empty"] != "fallback" || g.Labels["raw"] != "" {
		t.Errorf("global: %+v", g)
	}
	if httpOf(cfg.Checks[0]).URL != "https://www.shop.test/" || httpOf(cfg.Checks[0]).HTTP.BasicAuth.Password != "hunter2-secret" {
		t.Errorf("check: %+v", cfg.Checks[0])
	}
	if got := cfg.Secrets.Redact("pw=hunter2-secret host=www.shop.test"); got != "pw=<secret> host=<secret>" {
		t.Errorf("secrets not recorded: %q", got)
	}
	if got := cfg.Secrets.Redact("ams1 fallback"); got != "ams1 fallback" {
		t.Errorf("defaults must not be secrets: %q", got)
	}

	es := parseErrs(t, "global:\n  location: ${A}-${B:-x}-${C}\n", noEnv)
	if want := `c.yaml:2:13: environment variables "A", "C" are not set`; es.Error() != want {
		t.Errorf("got %v, want %s", es, want)
	}
	// Keys are never expanded.
	es = parseErrs(t, "global:\n  labels: {\"${X:-a}\": b}\n", noEnv)
	if !hasMsg(es, `c.yaml:2:12: invalid label name "${X:-a}"`) {
		t.Errorf("keys expanded? %v", es)
	}
}

// TestSecretsNeverInErrors feeds environment values into places that fail
// validation; no error may show them.
func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	env := envOf(map[string]string{"TOKEN": secret, "SHORT": "ab!"})
	yml := `
global:
  interval: ${TOKEN}
  location: ${SHORT}
paths:
  - name: p
    source_ip: ${TOKEN}
    resolver: ${TOKEN}
    proxy: http://user:${TOKEN}@
checks:
  - name: ${TOKEN}
    type: http
    url: https://x.test/${TOKEN}%zz
    timeout: ${SHORT}
    nodes: {addresses: ["${TOKEN}"]}
  - name: b
    type: ${TOKEN}
  - name: c
    type: tcp
    address: ${TOKEN}
notifiers:
  - name: n
    type: webhook
    url: ${TOKEN}
`
	es := parseErrs(t, yml, env)
	if len(es) < 9 {
		t.Fatalf("want many errors, got:\n%v", es)
	}
	for _, e := range es {
		if strings.Contains(e.Error(), secret) || strings.Contains(e.Error(), "ab!") {
			t.Errorf("secret leaked: %s", e)
		}
	}
}

func TestFileSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("pw", "correct-horse\n")
	write("token", "bearer-xyz\r\n")
	write("body.json", `{"q":"lego"}`+"\n")
	write("hook", "http://127.0.0.1:9999/secret-hook\n")
	write("vantage.yaml", `
checks:
  - name: a
    type: http
    url: https://x.test/
    http:
      method: POST
      basic_auth: {username: u, password_file: pw}
      body_file: body.json
  - name: b
    type: http
    url: https://x.test/
    http: {bearer_token_file: token}
notifiers:
  - name: n
    type: slack
    url_file: hook
`)
	cfg, err := Load(filepath.Join(dir, "vantage.yaml"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a, b := httpOf(cfg.Checks[0]).HTTP, httpOf(cfg.Checks[1]).HTTP
	// Secrets lose their trailing newline; a body is sent as written.
	if a.BasicAuth.Password != "correct-horse" || a.Body != `{"q":"lego"}`+"\n" || b.BearerToken != "bearer-xyz" {
		t.Errorf("file contents: pw=%q body=%q token=%q", a.BasicAuth.Password, a.Body, b.BearerToken)
	}
	if cfg.Notifiers[0].URL != "http://127.0.0.1:9999/secret-hook" {
		t.Errorf("url_file: %q", cfg.Notifiers[0].URL)
	}
	if got := cfg.Secrets.Redact("correct-horse bearer-xyz http://127.0.0.1:9999/secret-hook"); got != "<secret> <secret> <secret>" {
		t.Errorf("file secrets not redacted: %q", got)
	}

	// Both the value and its file, and an unreadable file.
	write("bad.yaml", `
notifiers:
  - name: n
    type: slack
    url: http://a.test/
    url_file: hook
  - name: m
    type: slack
    url_file: missing
`)
	_, err = Load(filepath.Join(dir, "bad.yaml"), noEnv)
	f := filepath.Join(dir, "bad.yaml")
	for _, want := range []string{
		f + ":6:5: url and url_file are mutually exclusive",
		f + `:9:15: cannot read url_file "missing": no such file or directory`,
	} {
		if es, _ := err.(Errors); !hasMsg(es, want) {
			t.Errorf("want %s in\n%v", want, err)
		}
	}
}

func TestTLSPathsRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "vantage.yaml")
	c, err := Parse([]byte(`
paths:
  - name: p
    tls: {ca_file: ca.pem}
checks:
  - name: a
    type: http
    url: https://x.test/
    tls: {ca_file: missing.pem, server_name: x.test}
`), file, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Paths[0].TLS.CAFile; got != filepath.Join(dir, "ca.pem") {
		t.Errorf("path ca_file = %q", got)
	}
	if got := c.Checks[0].TLS.CAFile; got != filepath.Join(dir, "missing.pem") {
		t.Errorf("check ca_file = %q", got)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), ":9:20: tls ca_file") {
		t.Errorf("want a warning for the missing ca_file, got %v", c.Warnings)
	}
}

func TestInclude(t *testing.T) {
	cfg, err := Load("testdata/valid-include.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cfg.Checks {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"main-home", "team-a-dns", "team-b-api"}) {
		t.Errorf("checks in order main, then includes sorted by file: %v", names)
	}
	dns := cfg.Checks[1]
	if dns.Pos != (Pos{"testdata/valid-include.d/10-team-a.yaml", 3, 5}) {
		t.Errorf("included check pos = %+v", dns.Pos)
	}
	if dns.Interval != model.Duration(time.Minute) || !slices.Equal(dns.Paths, []string{"isp-b"}) {
		t.Errorf("included check defaults: %+v", dns)
	}
	if len(cfg.Alerts) != 1 || cfg.Alerts[0].Pos.File != "testdata/valid-include.d/20-team-b.yaml" || !slices.Equal(cfg.Alerts[0].Notify, []string{"room"}) {
		t.Errorf("included alert: %+v", cfg.Alerts)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}

	// A duplicate across files names the other file.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "main.yaml"), []byte("include: [d/*.yaml]\nchecks:\n  - {name: a, type: tcp, address: 'x:1'}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "d", "x.yaml"), []byte("checks:\n  - {name: a, type: tcp, address: 'x:1'}\n"), 0o600)
	_, err = Load(filepath.Join(dir, "main.yaml"), noEnv)
	want := filepath.Join(dir, "d", "x.yaml") + `:2:12: duplicate check name "a" (first defined at ` + filepath.Join(dir, "main.yaml") + `:3)`
	if es, _ := err.(Errors); !hasMsg(es, want) {
		t.Errorf("want %s, got\n%v", want, err)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg, err := Load("testdata/valid-anchors.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Checks[1]
	if b.Name != "b" || b.Type != "http" || httpOf(b).URL != "https://b.shop.test/" || b.Interval != model.Duration(40*time.Second) || b.Nodes == nil {
		t.Errorf("merged check: %+v", b)
	}
}

func TestAllErrorsSorted(t *testing.T) {
	es := parseErrs(t, `
checks:
  - name: B
    type: nope
  - name: ok
    type: http
    url: https://x.test/
    timeout: 1h
    bogus: 1
global:
  up_after: 0
`, noEnv)
	want := []string{
		`c.yaml:3:11: invalid check name "B" (must match ^[a-z0-9_-]+$)`,
		`c.yaml:4:11: unknown check type "nope" (want http, browser, tcp or dns)`,
		`c.yaml:8:14: timeout 1h must be less than interval 30s`,
		`c.yaml:9:5: unknown key "bogus"`,
		`c.yaml:11:13: up_after must be >= 1`,
	}
	if got := strings.Split(es.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWarnings(t *testing.T) {
	cfg := mustParse(t, `
checks:
  - name: shop-home
    type: http
    url: https://x.test/
alerts:
  - name: A
    checks: [shop-*, nothing-*]
    when: failures >= 3
`, noEnv)
	if len(cfg.Warnings) != 1 || !strings.HasSuffix(cfg.Warnings[0].Error(), `:8:22: checks pattern "nothing-*" matches no check`) {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	if !cfg.Alerts[0].Matches("shop-home") || cfg.Alerts[0].Matches("other") {
		t.Error("Alert.Matches")
	}
}

// An expect key of another kind was accepted and ignored while expect was
// one union: it loads, with a warning at the key, and the kinds keep their
// own keys.
func TestExpectOtherKindWarns(t *testing.T) {
	f := "testdata/valid-expect-other-kind.yaml"
	cfg, err := Load(f, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	const tail = " check's expect and is ignored; it will be an error in a future release"
	want := []string{
		f + `:6:29: key "rcode" is not valid for a http` + tail,
		f + `:11:18: key "answers_min" is not valid for a http` + tail,
		f + `:17:7: key "status" is not valid for a dns` + tail,
		f + `:18:7: key "tls_min_days" is not used by a dns check and is ignored; a dns check makes no TLS connection (an http or tcp check with tls_handshake: true watches a certificate)`,
		f + `:22:14: key "body_contains" is not valid for a tcp` + tail,
		f + `:27:5: key "expect" is not used by a browser check and is ignored; its assert_text and assert_url steps are its assertions`,
	}
	var got []string
	for _, w := range cfg.Warnings {
		got = append(got, w.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	web := cfg.Checks[0].Expect
	if e, ok := web.Spec.(*httpprobe.Expect); !ok || !slices.Equal(e.Status, []int{200}) || web.MaxDuration != model.Duration(2*time.Second) {
		t.Errorf("http expect %+v spec %+v", web, web.Spec)
	}
	if st := httpOf(cfg.Checks[1]).Steps[0].Expect; st.TLSMinDays != 3 || st.Spec.(*httpprobe.Expect).Status != nil {
		t.Errorf("step expect %+v spec %+v", st, st.Spec)
	}
	if e, ok := cfg.Checks[2].Expect.Spec.(*dnsprobe.Expect); !ok || e.AnswersMin != 1 {
		t.Errorf("dns expect spec %+v", cfg.Checks[2].Expect.Spec)
	}
	if tcp := cfg.Checks[3].Expect; tcp.Spec != nil || tcp.MaxDuration != model.Duration(time.Second) {
		t.Errorf("tcp expect %+v", tcp)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml", noEnv)
	if err == nil || err.Error() != "testdata/does-not-exist.yaml: cannot read config: no such file or directory" {
		t.Errorf("got %v", err)
	}
}

// TestEmptyConfig: a file that defines nothing (a truncated write, the
// wrong file) is an error; a config without checks must say so.
func TestEmptyConfig(t *testing.T) {
	for name, text := range map[string]string{
		"empty": "", "whitespace": " \n\t\n", "comments": "# nothing yet\n# really\n",
		"document marker": "---\n", "null": "~\n", "bom": "\ufeff\n",
	} {
		_, err := Parse([]byte(text), "c.yaml", nil)
		if want := `c.yaml: config file is empty (write "allow_empty: true" for a config without checks)`; err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", name, err, want)
		}
	}
	cfg := mustParse(t, "allow_empty: true\n", nil)
	if !cfg.AllowEmpty || len(cfg.Paths) != 1 || cfg.Secrets == nil || cfg.Global.Interval == 0 || len(cfg.Warnings) != 0 {
		t.Errorf("%+v", cfg)
	}
	// No checks without allow_empty loads (validate, a first start) with a
	// warning about reloads.
	cfg = mustParse(t, "checks: []\n", nil)
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), "unless the config sets allow_empty: true") {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

// TestLimits: each limit rejects one over it with the flag that raises
// it, counts includes, and a zero Limits means DefaultLimits.
func TestLimits(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(name string) string { return fmt.Sprintf("  - {name: %s, type: tcp, address: 'x.test:1'}\n", name) }
	mainText := "include: [inc.yaml]\nchecks:\n" + check("a") + check("b")
	inc := write("inc.yaml", "# team c and d, a comment longer than the include line\nchecks:\n"+check("c")+check("d"))
	main := write("main.yaml", mainText)

	if _, err := LoadWithLimits(main, noEnv, Limits{MaxChecks: 4}); err != nil {
		t.Fatalf("4 checks within a limit of 4: %v", err)
	}
	_, err := LoadWithLimits(main, noEnv, Limits{MaxChecks: 3})
	if want := inc + ":4:5: more than 3 checks (raise the limit with --config.max-checks)"; err == nil || err.Error() != want {
		t.Errorf("checks over main and include: got %v, want %s", err, want)
	}
	_, err = LoadWithLimits(main, noEnv, Limits{MaxFileSize: 64})
	if want := main + ": config file is larger than 64 bytes (raise the limit with --config.max-file-size)"; err == nil || err.Error() != want {
		t.Errorf("main file size: got %v, want %s", err, want)
	}
	_, err = LoadWithLimits(main, noEnv, Limits{MaxFileSize: ByteSize(len(mainText))})
	if want := inc + ": included file is larger than"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("include size: got %v, want %s...", err, want)
	}
	_, err = ParseWithLimits([]byte("checks: []\n"), "c.yaml", nil, Limits{MaxFileSize: 4})
	if want := "c.yaml: config file is larger than 4 bytes (raise the limit with --config.max-file-size)"; err == nil || err.Error() != want {
		t.Errorf("Parse size: got %v", err)
	}
	// A device never ends; the read stops at the limit.
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err = LoadWithLimits(write("zero.yaml", "include: [/dev/zero]\n"), noEnv, Limits{MaxFileSize: 1 << 20})
		if err == nil || !strings.Contains(err.Error(), "/dev/zero: included file is larger than 1MiB") {
			t.Errorf("/dev/zero include: %v", err)
		}
	}
	// Targets: 2 paths × 3 nodes + 2 paths × 1 = 8.
	targets := "paths: [{name: a}, {name: b}]\nchecks:\n  - {name: n, type: tcp, address: 'x.test:1', nodes: {addresses: [10.0.0.1, 10.0.0.2, 10.0.0.3]}}\n" + check("one")
	if _, err := ParseWithLimits([]byte(targets), "t.yaml", nil, Limits{MaxTargets: 8}); err != nil {
		t.Errorf("8 targets within 8: %v", err)
	}
	if _, err := ParseWithLimits([]byte(targets), "t.yaml", nil, Limits{MaxTargets: 7}); err == nil || err.Error() != "t.yaml:4:5: more than 7 targets (checks × paths × nodes; raise the limit with --config.max-targets)" {
		t.Errorf("targets: %v", err)
	}
	// Memory: 400 targets with the default two windows need 64 MiB + 400 ×
	// 7 KiB; 66 MiB holds the first 292 checks' 2 MiB.
	var mem strings.Builder
	mem.WriteString("checks:\n")
	for i := range 400 {
		mem.WriteString(check(fmt.Sprintf("m%d", i)))
	}
	cfg, err := ParseWithLimits([]byte(mem.String()), "m.yaml", nil, Limits{MaxMemory: 67 << 20})
	if err != nil {
		t.Errorf("400 targets within 67MiB: %v", err)
	} else if got := TargetMemory(cfg, 1); got != 64<<20+400*7<<10 {
		t.Errorf("TargetMemory = %d", got)
	}
	_, err = ParseWithLimits([]byte(mem.String()), "m.yaml", nil, Limits{MaxMemory: 66 << 20, MaxMemorySource: "GOMEMLIMIT"})
	if want := fmt.Sprintf("m.yaml:%d:5: the config's 400 targets need about 66.7 MiB of memory, more than the 66.0 MiB vantage may use, GOMEMLIMIT; "+
		"only the checks before this one fit (split the checks over daemons with --shard=I/N, give vantage more memory, or raise the limit with --config.max-memory)",
		2+292); err == nil || err.Error() != want {
		t.Errorf("memory:\n got %v\nwant %s", err, want)
	}
	// Two shards: each runs half the targets, so half the memory fits.
	if _, err := ParseWithLimits([]byte(mem.String()), "m.yaml", nil, Limits{MaxMemory: 66 << 20, Shards: 2}); err != nil {
		t.Errorf("half of 400 targets within 66MiB: %v", err)
	}
	_, err = ParseWithLimits([]byte(mem.String()), "m.yaml", nil, Limits{MaxMemory: 65 << 20, Shards: 2})
	if want := fmt.Sprintf("m.yaml:%d:5: this shard's share of the config's 400 targets (1/2) needs about 65.4 MiB of memory, more than the 65.0 MiB vantage may use; "+
		"only the checks before this one fit (split the checks over daemons with --shard=I/N, give vantage more memory, or raise the limit with --config.max-memory)",
		2+292); err == nil || err.Error() != want {
		t.Errorf("memory, 2 shards:\n got %v\nwant %s", err, want)
	}
	// The defaults hold a config well past any real one.
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range 2000 {
		b.WriteString(check(fmt.Sprintf("c%d", i)))
	}
	if cfg, err := ParseWithLimits([]byte(b.String()), "big.yaml", nil, Limits{}); err != nil || len(cfg.Checks) != 2000 {
		t.Errorf("2000 checks with default limits: %v", err)
	}
}

// TestNeverEchoesFileContent: a file that is not a vantage config (a
// shadow file, a credentials mapping, broken or binary text) is rejected,
// as the main file or an include, without quoting any of it.
func TestNeverEchoesFileContent(t *testing.T) {
	const secret = "Sup3rSecretLine0x7f3a"
	for name, text := range map[string]string{
		"shadow":        "root:$6$salt$" + secret + ":19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
		"passwd":        "root:x:0:0:" + secret + ":/root:/bin/bash\n",
		"token":         secret + "\n",
		"list":          "- " + secret + "\n",
		"credentials":   `{"client_secret": "` + secret + `", "type": "service_account"}` + "\n",
		"anchor":        "a: *" + secret + "\n",
		"first line":    "a: b: " + secret + "\n",
		"quoted":        "a: '" + secret + "\n",
		"tab":           "\t" + secret + ": x\n",
		"binary":        "\x00\x01" + secret + "\xff\n",
		"latin1":        "password: caf\xe9-" + secret + "\n",
		"two documents": "x: 1\n---\n" + secret + ": [\n",
	} {
		dir := t.TempDir()
		secretFile := filepath.Join(dir, "secret")
		if err := os.WriteFile(secretFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		mainFile := filepath.Join(dir, "vantage.yaml")
		if err := os.WriteFile(mainFile, []byte("include: ["+secretFile+"]\nchecks:\n  - {name: a, type: tcp, address: 'x.test:1'}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{secretFile, mainFile} {
			cfg, err := Load(f, noEnv)
			if err == nil {
				t.Errorf("%s: %s loaded (%d checks)", name, filepath.Base(f), len(cfg.Checks))
				continue
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: %s: error shows the file's content:\n%v", name, filepath.Base(f), err)
			}
			for _, e := range err.(Errors) {
				if e.Pos.File != secretFile {
					t.Errorf("%s: error not about the secret file: %v", name, e)
				}
			}
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := `
paths:
  - name: p
    resolver: 127.0.0.53
checks:
  - name: a
    type: http
    url: https://x.test/
    labels: {a: "1", b: "2"}
`
	c1 := mustParse(t, base, noEnv)
	c2 := mustParse(t, "\n\n# moved down\n"+base, noEnv)
	if c1.Checks[0].Pos == c2.Checks[0].Pos {
		t.Fatal("test needs different positions")
	}
	if c1.Checks[0].Fingerprint() != c2.Checks[0].Fingerprint() || c1.Paths[0].Fingerprint() != c2.Paths[0].Fingerprint() {
		t.Error("fingerprint depends on position")
	}
	c3 := mustParse(t, strings.Replace(base, `b: "2"`, `b: "3"`, 1), noEnv)
	if c1.Checks[0].Fingerprint() == c3.Checks[0].Fingerprint() {
		t.Error("label change not in fingerprint")
	}
	c4 := mustParse(t, strings.Replace(base, "127.0.0.53", "127.0.0.54", 1), noEnv)
	if c1.Paths[0].Fingerprint() == c4.Paths[0].Fingerprint() {
		t.Error("resolver change not in path fingerprint")
	}
	c5 := mustParse(t, "global: {interval: 1m}\n"+base, noEnv)
	if c1.Checks[0].Fingerprint() == c5.Checks[0].Fingerprint() {
		t.Error("inherited interval change not in fingerprint")
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"512": 512, "10KB": 10000, "10KiB": 10240, "10MB": 10e6, "10MiB": 10 << 20, "1GiB": 1 << 30, "1.5KiB": 1536, "2 kb": 2000,
	} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "KB", "10XB", "-1", "1e3"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
	cfg := mustParse(t, "checks:\n  - {name: a, type: http, url: 'https://x.test/', http: {max_body_bytes: 1048576}}\n", noEnv)
	if httpOf(cfg.Checks[0]).HTTP.MaxBodyBytes != 1<<20 || httpOf(cfg.Checks[0]).HTTP.MaxBodyBytes.String() != "1MiB" {
		t.Errorf("integer size: %v", httpOf(cfg.Checks[0]).HTTP.MaxBodyBytes)
	}
}

func TestIPVersion(t *testing.T) {
	cfg := mustParse(t, `
paths:
  - {name: a, ip_version: 4}
  - {name: b, ip_version: "6"}
  - {name: c, ip_version: any}
  - {name: d}
`, noEnv)
	for i, want := range []IPVersion{4, 6, 0, 0} {
		if cfg.Paths[i].IPVersion != want {
			t.Errorf("path %d: %v, want %v", i, cfg.Paths[i].IPVersion, want)
		}
	}
}

func TestNodeAddrForms(t *testing.T) {
	cfg := mustParse(t, `
checks:
  - name: a
    type: http
    url: https://x.test/
    nodes:
      addresses: [10.0.0.11, "10.0.0.13:8443", "[::1]:8443", {name: lb2, address: 10.0.0.12}]
`, noEnv)
	got := cfg.Checks[0].Nodes.Addresses
	want := []struct{ name, addr, label string }{
		{"", "10.0.0.11", "10.0.0.11"}, {"", "10.0.0.13:8443", "10.0.0.13"}, {"", "[::1]:8443", "::1"}, {"lb2", "10.0.0.12", "lb2"},
	}
	for i, w := range want {
		if got[i].Name != w.name || got[i].Address != w.addr || got[i].Label() != w.label || got[i].Pos.Line != 7 {
			t.Errorf("node %d: %+v (label %q), want %+v", i, got[i], got[i].Label(), w)
		}
	}
}

func TestParseExpr(t *testing.T) {
	ok := map[string]Expr{
		"p99 > 1.5s":              {"p99", ">", 1.5},
		"p90>=800ms":              {"p90", ">=", 0.8},
		"domain_p90 < 2":          {"domain_p90", "<", 2},
		"p50 <= 1m":               {"p50", "<=", 60},
		"success_ratio < 0.95":    {"success_ratio", "<", 0.95},
		"failures >= 3":           {"failures", ">=", 3},
		"node_slowdown > 3":       {"node_slowdown", ">", 3},
		"domain_error_ratio > .2": {"domain_error_ratio", ">", 0.2},
		"cert_days_left < 14":     {"cert_days_left", "<", 14},
	}
	for in, want := range ok {
		got, err := ParseExpr(in)
		if err != nil || got != want {
			t.Errorf("ParseExpr(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "p99", "p99 >", "p95 > 1s", "p99 != 1s", "p99 > fast", "failures > 1s", "p99 > 1s extra"} {
		if _, err := ParseExpr(in); err == nil {
			t.Errorf("ParseExpr(%q) accepted", in)
		}
	}
	e := Expr{"p99", ">", 1.5}
	if !e.Holds(2) || e.Holds(1.5) || e.String() != "p99 > 1.5s" {
		t.Errorf("Holds/String: %v %v %q", e.Holds(2), e.Holds(1.5), e.String())
	}
}

func TestErrorsFormat(t *testing.T) {
	es := Errors{{Pos{"a.yaml", 3, 7}, "first"}, {Pos{"a.yaml", 0, 0}, "whole file"}}
	if es.Error() != "a.yaml:3:7: first\na.yaml: whole file" {
		t.Errorf("%q", es.Error())
	}
}

func TestEveryProblemReported(t *testing.T) {
	es := parseErrs(t, "checks:\n  - url: https://x.test/\n    interval: soon\n", noEnv)
	want := []string{
		"c.yaml:2:5: check has no name",
		"c.yaml:2:5: check has no type (want http, browser, tcp or dns)",
		`c.yaml:3:15: invalid duration "soon" (want e.g. 500ms, 30s, 5m, 2h, 7d)`,
	}
	if got := strings.Split(es.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAliasBomb: a few lines of nested aliases ("billion laughs") are
// rejected quickly instead of being walked for minutes.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "x%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("checks:\n  - name: a\n    type: http\n    url: http://x.test/\n    labels: {bomb: *a8}\n")
	_, err := Parse([]byte(b.String()), "bomb.yaml", noEnv)
	if err == nil {
		t.Fatal("accepted")
	}
	if !strings.Contains(err.Error(), "bomb.yaml:7:30: this file expands to more than 5000000 YAML nodes with its aliases followed") {
		t.Fatalf("got %v", err)
	}
}
