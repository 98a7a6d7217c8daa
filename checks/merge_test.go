package checks_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	. "github.com/vantage-monitoring/vantage/checks"
)

// TestMergeKeysListForm: `<<: [*a, *b]` merges both mappings; as YAML's
// merge key says, explicit keys win, then the earlier mapping of the list
// over the later one; and a merge nested in a check (its labels, its
// request's headers) works the same.
func TestMergeKeysListForm(t *testing.T) {
	cfg := mustParse(t, `
checks:
  - &a
    name: a
    type: http
    url: https://a.shop.test/
    interval: 20s
    labels: &la {team: a, tier: web}
    http:
      headers: &ha {X-From: a, X-A: "1"}
  - &b
    name: b
    type: http
    url: https://b.shop.test/
    interval: 40s
    timeout: 5s
    nodes: {resolve: all}
    labels: &lb {team: b, owner: bob}
    http:
      headers: &hb {X-From: b, X-B: "2"}
  - <<: [*a, *b]
    name: c
    labels:
      <<: [*lb, *la]
      tier: api
    http:
      headers: {<<: [*ha, *hb]}
`, noEnv)
	if len(cfg.Checks) != 3 {
		t.Fatalf("%d checks, want 3", len(cfg.Checks))
	}
	c := cfg.Checks[2]
	if c.Name != "c" || c.Type != "http" || httpOf(c).URL != "https://a.shop.test/" {
		t.Errorf("c: name %q type %q url %q, want c, http and a's url (the first mapping wins)", c.Name, c.Type, httpOf(c).URL)
	}
	if c.Interval != model.Duration(20*time.Second) || c.Timeout != model.Duration(5*time.Second) {
		t.Errorf("c: interval %s timeout %s, want a's 20s and b's 5s", c.Interval, c.Timeout)
	}
	if c.Nodes == nil || c.Nodes.Resolve != "all" {
		t.Errorf("c: nodes %+v, want b's resolve: all", c.Nodes)
	}
	if want := map[string]string{"team": "b", "owner": "bob", "tier": "api"}; !maps.Equal(c.Labels, want) {
		t.Errorf("c: labels %v, want %v", c.Labels, want)
	}
	if httpOf(c).HTTP == nil {
		t.Fatal("c: no http section")
	}
	if want := map[string]string{"X-From": "a", "X-A": "1", "X-B": "2"}; !maps.Equal(httpOf(c).HTTP.Headers, want) {
		t.Errorf("c: headers %v, want %v", httpOf(c).HTTP.Headers, want)
	}
	// The sources are untouched.
	if a := cfg.Checks[0]; a.Timeout == model.Duration(5*time.Second) || a.Labels["owner"] != "" {
		t.Errorf("a changed by the merge: %+v", a)
	}

	// A key merged from a list is as strict as a written one: a typo in
	// the second mapping is an error at its own line.
	es := parseErrs(t, `checks:
  - &a {name: a, type: http, url: "https://a.shop.test/"}
  - &b {name: b, type: http, url: "https://b.shop.test/", intervall: 5s}
  - <<: [*a, *b]
    name: c
`, noEnv)
	// Once, although c decodes b's keys again.
	if want := `c.yaml:3:59: unknown key "intervall"`; len(es) != 1 || es[0].Error() != want {
		t.Errorf("want the typo reported once at its line (%s), got:\n%v", want, es)
	}
}

// TestMergeKeysInIncludedFiles: an included file's anchors and merge keys
// (single and list form) apply inside that file, and a problem in merged
// content names the included file and its line. An alias to an anchor of
// another file is an error naming the file: each file is its own YAML
// document.
func TestMergeKeysInIncludedFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	main := write("main.yaml", `include: ["teams/*.yaml"]
checks:
  - {name: main-home, type: http, url: "https://www.shop.test/"}
`)
	write("teams/a.yaml", `checks:
  - &base
    name: team-a-home
    type: http
    url: https://a.shop.test/
    interval: 30s
    labels: &team {team: a}
  - &slow
    name: team-a-search
    type: http
    url: https://a.shop.test/search
    timeout: 9s
  - <<: *base
    name: team-a-cart
    url: https://a.shop.test/cart
  - <<: [*slow, *base]
    name: team-a-login
    labels: {<<: *team, flow: login}
alerts:
  - &rule {name: TeamASlow, checks: ["team-a-*"], when: p90 > 2s, window: 5m}
  - <<: *rule
    name: TeamAFailing
    when: success_ratio < 0.9
`)
	cfg, err := Load(main, noEnv)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	byName := map[string]Check{}
	for _, c := range cfg.Checks {
		byName[c.Name] = c
	}
	cart, login := byName["team-a-cart"], byName["team-a-login"]
	if httpOf(cart).URL != "https://a.shop.test/cart" || cart.Interval != model.Duration(30*time.Second) || cart.Labels["team"] != "a" {
		t.Errorf("team-a-cart: %+v", cart)
	}
	if !strings.HasSuffix(cart.Pos.File, filepath.Join("teams", "a.yaml")) {
		t.Errorf("team-a-cart is placed at %v, want teams/a.yaml", cart.Pos)
	}
	if httpOf(login).URL != "https://a.shop.test/search" || login.Timeout != model.Duration(9*time.Second) ||
		login.Interval != model.Duration(30*time.Second) || !maps.Equal(login.Labels, map[string]string{"team": "a", "flow": "login"}) {
		t.Errorf("team-a-login: url %q timeout %s interval %s labels %v", httpOf(login).URL, login.Timeout, login.Interval, login.Labels)
	}
	if len(cfg.Alerts) != 2 || cfg.Alerts[1].Name != "TeamAFailing" || cfg.Alerts[1].Window != model.Duration(5*time.Minute) ||
		len(cfg.Alerts[1].Checks) != 1 || cfg.Alerts[1].Checks[0] != "team-a-*" || cfg.Alerts[1].Expr.Measure != "success_ratio" {
		t.Errorf("merged alert: %+v", cfg.Alerts)
	}

	// A bad value in merged content: the included file's line.
	b := write("teams/b.yaml", `checks:
  - &base {name: team-b-home, type: http, url: "https://b.shop.test/", interval: soon}
  - <<: [*base]
    name: team-b-cart
`)
	_, err = Load(main, noEnv)
	// Once, although team-b-cart merges it.
	if want := b + `:2:82: invalid duration "soon" (want e.g. 500ms, 30s, 5m, 2h, 7d)`; err == nil || err.Error() != want {
		t.Errorf("want\n%s\ngot:\n%v", want, err)
	}

	// An anchor of another file is unknown in an included one. (The
	// message does not quote the name: a file that is not YAML at all
	// could be anything.)
	write("main.yaml", `include: ["teams/*.yaml"]
checks:
  - &home {name: main-home, type: http, url: "https://www.shop.test/"}
`)
	write("teams/b.yaml", `checks:
  - <<: *home
    name: team-b-cart
`)
	_, err = Load(main, noEnv)
	if want := b + ":2:9: invalid YAML: unknown anchor referenced (define it with &name before this *name)"; err == nil || err.Error() != want {
		t.Errorf("want\n%s\ngot:\n%v", want, err)
	}
}
