package daemon_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
)

func productCheck(shop *demo.Shop, name string) string {
	return fmt.Sprintf(`  - name: %s
    type: http
    url: %s
    nodes: {addresses: [{name: lb1, address: 127.0.0.11}]}
    labels: {route: product}
    expect: {status: [200]}
`, name, shop.URL(demo.WWWHost, "/product/123"))
}

func runsTotal(t *testing.T, e exposition, check string) float64 {
	t.Helper()
	var sum float64
	for _, m := range e.series("vantage_check_runs_total", lbl("check", check)) {
		sum += sampleValue(m)
	}
	return sum
}

// TestReload: a broken config is rejected with FILE:LINE:COL and the old
// targets keep running; a valid changed config replaces removed checks and
// keeps unchanged ones' state.
func TestReload(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	const interval = 700 * time.Millisecond
	v1 := shopConfig(shop, interval, 600*time.Millisecond, shopHome(shop, "keep")+productCheck(shop, "drop"))
	cfgFile := writeConfig(t, v1)
	r := startDaemon(t, daemon.Options{ConfigFile: cfgFile})

	testenv.Eventually(t, 20*time.Second, "", func() error {
		e := r.scrape(t)
		if runsTotal(t, e, "keep") < 6 || runsTotal(t, e, "drop") < 2 {
			return fmt.Errorf("keep %v runs, drop %v runs", runsTotal(t, e, "keep"), runsTotal(t, e, "drop"))
		}
		return nil
	})
	before := r.scrape(t)
	okTime, _ := before.value(t, "vantage_config_last_reload_success_timestamp_seconds", nil)

	// A typo in a key: rejected with its position.
	broken := strings.Replace(v1, "    type: http\n    url:", "    type: http\n    urll:", 1)
	lines := strings.Split(broken, "\n")
	var pos string
	for i, l := range lines {
		if c := strings.Index(l, "urll:"); c >= 0 {
			pos = fmt.Sprintf("%s:%d:%d: ", cfgFile, i+1, c+1)
			break
		}
	}
	writeFile(t, cfgFile, broken)
	code, body := r.do(t, http.MethodPost, "/-/reload", nil)
	if code != http.StatusInternalServerError {
		t.Fatalf("reload with a broken config: %d %s, want 500", code, body)
	}
	if want := pos + `unknown key "urll"`; !strings.Contains(body, want) {
		t.Errorf("reload response does not name the problem %q:\n%s", want, body)
	}
	afterBad := r.scrape(t)
	if v, _ := afterBad.value(t, "vantage_config_last_reload_successful", nil); v != 0 {
		t.Errorf("vantage_config_last_reload_successful = %v after a failed reload, want 0", v)
	}
	if v, _ := afterBad.value(t, "vantage_config_last_reload_success_timestamp_seconds", nil); v != okTime {
		t.Errorf("last successful reload time moved from %v to %v on a failed reload", okTime, v)
	}
	if code, body := r.do(t, http.MethodGet, "/-/ready", nil); code != http.StatusOK {
		t.Errorf("not ready after a rejected reload: %d %s", code, body)
	}
	// A self-referencing merge key once recursed until the daemon died of a
	// stack overflow; it is now one more rejected reload.
	writeFile(t, cfgFile, strings.Replace(v1, "global:\n", "global: &g\n  <<: *g\n", 1))
	code, body = r.do(t, http.MethodPost, "/-/reload", nil)
	if want := cfgFile + ":2:7: alias *g refers to a node that contains it"; code != http.StatusInternalServerError || !strings.Contains(body, want) {
		t.Fatalf("reload with a recursive merge key: %d %s, want 500 naming %q", code, body, want)
	}
	// The old config keeps running.
	testenv.Eventually(t, 15*time.Second, "", func() error {
		e := r.scrape(t)
		for _, c := range []string{"keep", "drop"} {
			if runsTotal(t, e, c) <= runsTotal(t, afterBad, c)+1 {
				return fmt.Errorf("%s: runs %v -> %v", c, runsTotal(t, afterBad, c), runsTotal(t, e, c))
			}
		}
		return nil
	})

	// A valid change: drop goes, added arrives, keep is untouched.
	v2 := shopConfig(shop, interval, 600*time.Millisecond, shopHome(shop, "keep")+productCheck(shop, "added"))
	writeFile(t, cfgFile, v2)
	pre := r.scrape(t)
	keepRuns := map[string]float64{}
	for _, m := range pre.series("vantage_check_runs_total", lbl("check", "keep")) {
		l := labelsOf(m)
		keepRuns[l["path"]+"/"+l["node"]+"/"+l["result"]] = sampleValue(m)
	}
	if code, body := r.do(t, http.MethodPost, "/-/reload", nil); code != http.StatusOK {
		t.Fatalf("reload with a valid config: %d %s", code, body)
	}
	post := r.scrape(t)
	if v, _ := post.value(t, "vantage_config_last_reload_successful", nil); v != 1 {
		t.Errorf("vantage_config_last_reload_successful = %v after a good reload, want 1", v)
	}
	for name := range post.fams {
		if name == "vantage_scheduler_skipped_runs_total" {
			continue // only there if a run was skipped; see TestSkippedRuns
		}
		if s := post.series(name, lbl("check", "drop")); len(s) > 0 {
			t.Errorf("%s still has series of the removed check: %v", name, labelsOf(s[0]))
		}
	}
	if len(keepRuns) != 2*3*4 {
		t.Fatalf("keep had %d runs_total series before the reload, want 24", len(keepRuns))
	}
	for _, m := range post.series("vantage_check_runs_total", lbl("check", "keep")) {
		l := labelsOf(m)
		k := l["path"] + "/" + l["node"] + "/" + l["result"]
		if v := sampleValue(m); v < keepRuns[k] {
			t.Errorf("keep %s: runs counter reset by the reload: %v -> %v", k, keepRuns[k], v)
		}
	}
	if len(r.d.Scheduler().Targets()) != 8 {
		t.Errorf("%d targets after the reload, want 6 keep + 2 added", len(r.d.Scheduler().Targets()))
	}
	testenv.Eventually(t, 15*time.Second, "", func() error {
		for _, path := range shopPaths {
			if v, _ := r.scrape(t).value(t, "vantage_check_runs_total", lbl("check", "added", "path", path, "result", "success")); v < 1 {
				return fmt.Errorf("the added check has not run over %s", path)
			}
		}
		return nil
	})
}

// TestNewRejectsInvalidConfig: every problem is listed and no daemon is built.
func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `global: {interval: 1s, timeout: 2s}
checks:
  - name: a
    type: http
    url: https://x.test/
    paths: [nowhere]
  - name: a
    type: tcp
    address: x.test:443
`)
	d, err := daemon.New(daemon.Options{ConfigFile: cfg, Logger: testLogger(t), Kinds: kinds.Registry(), Probers: kinds.Probers(testLogger(t), nil)})
	if err == nil {
		t.Fatal("daemon.New accepted an invalid config")
	}
	if d != nil {
		t.Error("daemon.New returned a daemon along with an error")
	}
	var es checks.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %T is not checks.Errors: %v", err, err)
	}
	if len(es) < 3 {
		t.Errorf("want at least 3 problems (timeout, path, duplicate), got %d:\n%v", len(es), err)
	}
	for _, e := range es {
		if !strings.HasPrefix(e.Error(), cfg+":") {
			t.Errorf("problem without position: %q", e.Error())
		}
	}

	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if _, err := daemon.New(daemon.Options{ConfigFile: missing, Logger: testLogger(t), Kinds: kinds.Registry()}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing config: error %v should name the file", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a missing config file was created")
	}
}

// TestSkippedRuns: a run that cannot start on time because the previous one
// still waits for a probe slot is skipped and counted per check; removing
// the check removes that series too.
func TestSkippedRuns(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	setFault(t, shop, "www.shop.test:stall")
	const interval = 500 * time.Millisecond
	cfgFile := writeConfig(t, shopConfig(shop, interval, 450*time.Millisecond, shopHome(shop, "stalled")))
	// One probe at a time: six targets stalling 450ms each cannot all run
	// every 500ms, so queued runs make later slots skip.
	r := startDaemon(t, daemon.Options{ConfigFile: cfgFile, MaxConcurrent: 1})
	testenv.Eventually(t, 20*time.Second, "", func() error {
		e := r.scrape(t)
		if v, _ := e.value(t, "vantage_scheduler_skipped_runs_total", lbl("check", "stalled")); v < 3 {
			return fmt.Errorf("%v skipped runs, want >= 3", v)
		}
		if v := runsTotal(t, e, "stalled"); v < 2 {
			return fmt.Errorf("%v runs, want >= 2", v)
		}
		return nil
	})
	e := r.scrape(t)
	for _, m := range e.series("vantage_check_runs_total", lbl("check", "stalled")) {
		if l := labelsOf(m); l["result"] != "timeout" && sampleValue(m) != 0 {
			t.Errorf("a stalled node reported %v runs as %s", sampleValue(m), l["result"])
		}
	}

	writeFile(t, cfgFile, shopConfig(shop, interval, 450*time.Millisecond, productCheck(shop, "other")))
	if code, body := r.do(t, http.MethodPost, "/-/reload", nil); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	post := r.scrape(t)
	if n := len(post.series("vantage_check_runs_total", lbl("check", "stalled"))); n != 0 {
		t.Errorf("%d runs_total series of the removed check remain", n)
	}
	if len(post.series("vantage_scheduler_skipped_runs_total", lbl("check", "stalled"))) != 0 {
		t.Fatal("vantage_scheduler_skipped_runs_total{check=\"stalled\"} survives the removal of its check")
	}
}

// TestReloadRefusesLosingEveryCheck: an empty file, a file without checks,
// a truncated one, a missing include, a config over a limit and an include
// of a file such as /etc/shadow are each refused with a clear error that
// never quotes the file; the daemon keeps running its old checks. Only a
// config that says allow_empty: true removes every check.
func TestReloadRefusesLosingEveryCheck(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	const interval = 700 * time.Millisecond
	v1 := shopConfig(shop, interval, 600*time.Millisecond, shopHome(shop, "keep"))
	cfgFile := writeConfig(t, v1)
	logs := &syncBuffer{}
	r := startDaemon(t, daemon.Options{ConfigFile: cfgFile, StoragePath: t.TempDir(),
		Logger: zerolog.New(logs), Limits: checks.Limits{MaxChecks: 2}})
	testenv.Eventually(t, 20*time.Second, "", func() error {
		if n := runsTotal(t, r.scrape(t), "keep"); n < 6 {
			return fmt.Errorf("keep: %v runs", n)
		}
		return nil
	})

	const secret = "Sup3rSecretShadowHash0x7f3a"
	shadow := filepath.Join(t.TempDir(), "shadow")
	writeFile(t, shadow, "root:$6$salt$"+secret+":19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
	empty := `: config file is empty (write "allow_empty: true" for a config without checks)`
	noChecks := ": the config defines no checks; refusing to remove all 1 running checks (set allow_empty: true at the top level to allow it)"
	for _, c := range []struct{ name, text, want string }{
		{"empty", "", cfgFile + empty},
		{"comments only", "# checks moved to checks.d/\n\n", cfgFile + empty},
		{"no checks", "checks: []\n", cfgFile + noChecks},
		{"truncated", v1[:strings.Index(v1, "checks:")], cfgFile + noChecks},
		{"missing include", "include: [checks.d/team-a.yaml]\n" + v1, cfgFile + `:1:11: included file "checks.d/team-a.yaml" does not exist`},
		{"over the check limit", v1 + shopHome(shop, "two") + shopHome(shop, "three"), cfgFile + ":"},
		{"shadow include", "include: [" + shadow + "]\n" + v1, shadow + ":1:1: not a vantage config"},
		{"not UTF-8", "# caf\xe9\n" + v1, cfgFile + ":1:6: invalid UTF-8"},
		{"recursive merge key", strings.Replace(v1, "global:\n", "global: &g\n  <<: *g\n", 1), cfgFile + ":2:7: alias *g refers to a node that contains it"},
	} {
		before := r.scrape(t)
		writeFile(t, cfgFile, c.text)
		code, body := r.do(t, http.MethodPost, "/-/reload", nil)
		if code != http.StatusInternalServerError || !strings.Contains(body, c.want) {
			t.Errorf("%s: reload answered %d %s, want 500 naming %q", c.name, code, body, c.want)
		}
		if c.name == "over the check limit" && !strings.Contains(body, "more than 2 checks (raise the limit with --config.max-checks)") {
			t.Errorf("%s: %s", c.name, body)
		}
		if v, _ := r.scrape(t).value(t, "vantage_config_last_reload_successful", nil); v != 0 {
			t.Errorf("%s: vantage_config_last_reload_successful = %v, want 0", c.name, v)
		}
		if n := len(r.d.Config().Checks); n != 1 {
			t.Errorf("%s: the running config has %d checks, want the old 1", c.name, n)
		}
		testenv.Eventually(t, 15*time.Second, c.name, func() error {
			if a, b := runsTotal(t, before, "keep"), runsTotal(t, r.scrape(t), "keep"); b <= a+1 {
				return fmt.Errorf("keep runs %v -> %v", a, b)
			}
			return nil
		})
	}
	_, timeline := r.do(t, http.MethodGet, "/api/v1/timeline?since=1h", nil)
	if !strings.Contains(timeline, "not a vantage config") {
		t.Errorf("the timeline does not record the rejected reload:\n%s", timeline)
	}
	for what, text := range map[string]string{"log": logs.String(), "timeline": timeline} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s quotes the shadow file:\n%s", what, text)
		}
	}

	// Said explicitly, every check goes.
	writeFile(t, cfgFile, "allow_empty: true\n")
	if code, body := r.do(t, http.MethodPost, "/-/reload", nil); code != http.StatusOK {
		t.Fatalf("reload with allow_empty: true: %d %s", code, body)
	}
	if v, _ := r.scrape(t).value(t, "vantage_config_last_reload_successful", nil); v != 1 {
		t.Errorf("vantage_config_last_reload_successful = %v after allow_empty, want 1", v)
	}
	if n := len(r.d.Scheduler().Targets()); n != 0 {
		t.Errorf("%d targets after an allowed empty reload, want 0", n)
	}
}
