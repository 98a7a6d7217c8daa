package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/once"
	"github.com/vantage-monitoring/vantage/internal/testdaemon"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// vantage runs the CLI in-process and returns its exit code and output.
func vantage(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vantage.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startTestShop(t *testing.T, faults ...string) *demo.Shop {
	t.Helper()
	shop := testdaemon.Shop(t)
	for _, spec := range faults {
		target, f, err := demo.ParseFault(spec)
		if err == nil {
			err = shop.SetFault(target, f)
		}
		if err != nil {
			t.Fatalf("fault %s: %v", spec, err)
		}
	}
	return shop
}

func demoConfig(t *testing.T, shop *demo.Shop) string {
	return writeConfig(t, shop.ConfigWithOptions(demo.ConfigOptions{Interval: 10 * time.Second, Timeout: 3 * time.Second}))
}

var (
	// shopNodes are the node labels of the demo config (its node_names),
	// shopNodeIPs the addresses behind them.
	shopNodes   = []string{"lb1", "lb2", "lb3"}
	shopNodeIPs = []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}
	shopPaths   = []string{"direct", "alt-source"}
)

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, errs := vantage(t, "version")
	if code != 0 || !strings.HasPrefix(out, "vantage, version") || !strings.Contains(out, "go version:") {
		t.Errorf("version: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	// Built without the Makefile's -ldflags (as tests are), nothing is
	// left empty.
	for _, field := range []string{"version", "build user:", "build date:"} {
		if !regexp.MustCompile(`(?m)` + regexp.QuoteMeta(field) + ` +\S`).MatchString(out) {
			t.Errorf("version: %q is empty:\n%s", field, out)
		}
	}
}

// TestVersionFallback: without -ldflags the module version and the commit
// time recorded by Go stand in.
func TestVersionFallback(t *testing.T) {
	got := buildFallback(&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.time", Value: "2026-12-06T18:04:05Z"}}})
	if got.version != "1.2.3" || got.date != "20261206-18:04:05 (commit time)" {
		t.Errorf("%+v", got)
	}
	if got := buildFallback(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}); got.version != "(devel)" || got.date != "unknown" {
		t.Errorf("%+v", got)
	}
}

// TestMakeBuildStampsVersion: `make build` sets every field of `vantage
// version`, the build user and date included.
func TestMakeBuildStampsVersion(t *testing.T) {
	mk := testenv.LookPath(t, "make", "make")
	out, err := exec.Command(mk, "-s", "-n", "-C", "../..", "build").Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	m := regexp.MustCompile(`-ldflags '([^']*)'`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no -ldflags in `make -n build`:\n%s", out)
	}
	bin := filepath.Join(t.TempDir(), "vantage")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, "go", "build", "-ldflags", string(m[1]), "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	ver, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("vantage version: %v", err)
	}
	for _, re := range []string{`version \d+\.\d+\.\d+ \(branch: \S+, revision: \S+\)`, `build user: +\S+@\S+`, `build date: +\d{8}-\d\d:\d\d:\d\d`} {
		if !regexp.MustCompile(re).Match(ver) {
			t.Errorf("vantage version does not match %s:\n%s", re, ver)
		}
	}
}

// TestHelp: help in every form prints the usage once and exits 0, with
// no error line.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"help", "run"}, {"run", "--help"}, {"run", "-h"},
		{"validate", "--help"}, {"once", "--help"}, {"demo", "--help"}, {"timeline", "--help"},
		{"version", "--help"}, {"--log.level=debug", "run", "--help"}, {"run", "--help", "--probe.max-concurrent=0"},
	} {
		code, out, errs := vantage(t, args...)
		if code != 0 {
			t.Errorf("vantage %q: exit %d, want 0\n%s", args, code, errs)
		}
		if n := strings.Count(out+errs, "usage: vantage"); n != 1 {
			t.Errorf("vantage %q: the usage is printed %d times:\n%s", args, n, out+errs)
		}
		if strings.Contains(out+errs, "vantage:") {
			t.Errorf("vantage %q: an error line with the help:\n%s", args, errs)
		}
	}
	code, _, errs := vantage(t, "run", "--help")
	if code != 0 || !strings.Contains(errs, "--probe.max-concurrent") || !strings.Contains(errs, "--config.max-checks") {
		t.Errorf("run --help does not list run's flags:\n%s", errs)
	}
}

func TestBadFlagsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"run", "--no-such-flag"},
		{"no-such-command"},
		{},
		{"once", "--output=xml"},
		{"--log.level=loud", "version"},
		{"--log.format=xml", "version"},
		{"run", "--shard=2/2"},
		{"run", "--shard=x"},
		{"run", "--storage.retention=forever"},
		{"help", "no-such-command"},
	} {
		code, out, errs := vantage(t, args...)
		if code != 2 {
			t.Errorf("vantage %q: exit %d, want 2\nstdout: %s\nstderr: %s", args, code, out, errs)
		}
		if strings.TrimSpace(errs) == "" {
			t.Errorf("vantage %q: nothing on stderr to say what is wrong", args)
		}
	}
	if _, _, errs := vantage(t); !strings.HasSuffix(errs, "vantage: command not specified\n") || strings.Count(errs, "usage:") != 1 {
		t.Errorf("vantage without a command:\n%s", errs)
	}
}

// TestNonsenseFlagValuesExit2: values that parse but cannot work are
// rejected at start with the flag's name, before anything starts.
func TestNonsenseFlagValuesExit2(t *testing.T) {
	t.Parallel()
	// Should a rule go missing, these end at once (exit 1) instead of
	// starting a daemon: the config is empty, the demo's directory cannot
	// be made.
	cfg := writeConfig(t, "")
	noDir := filepath.Join(cfg, "not-a-dir")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--probe.max-concurrent=0"}, "--probe.max-concurrent must be at least 1, got 0"},
		{[]string{"run", "--probe.max-concurrent=-5"}, "--probe.max-concurrent must be at least 1, got -5"},
		{[]string{"run", "--alerting.eval-interval=0s"}, "--alerting.eval-interval must be more than 0s, got 0s"},
		{[]string{"run", "--alerting.eval-interval=-1s"}, "--alerting.eval-interval must be more than 0s, got -1s"},
		{[]string{"run", "--browser.max-concurrent=0"}, "--browser.max-concurrent must be at least 1, got 0"},
		{[]string{"run", "--storage.retention=0s"}, "--storage.retention must be more than 0s, got 0s"},
		{[]string{"run", "--config.max-checks=0"}, "--config.max-checks must be at least 1, got 0"},
		{[]string{"run", "--config.max-targets=-1"}, "--config.max-targets must be at least 1, got -1"},
		{[]string{"run", "--config.max-yaml-nodes=0"}, "--config.max-yaml-nodes must be at least 1, got 0"},
		{[]string{"run", "--config.max-file-size=0"}, "--config.max-file-size must be more than 0"},
		{[]string{"run", "--config.max-file-size=lots"}, `--config.max-file-size: invalid size "lots" (want e.g. 512, 10KB, 10KiB, 10MiB)`},
		{[]string{"run", "--config.max-memory=plenty"}, `--config.max-memory: want auto, 0 or a size such as 900MiB, not "plenty"`},
		{[]string{"validate", "--config.max-checks=-1"}, "--config.max-checks must be at least 1, got -1"},
		{[]string{"once", "--browser.max-concurrent=-1"}, "--browser.max-concurrent must be at least 1, got -1"},
		{[]string{"demo", "--demo.interval=0s"}, "--demo.interval must be more than 0s, got 0s"},
		{[]string{"demo", "--demo.https-port=70000"}, "--demo.https-port must be a port from 1 to 65535, or 0 for a random one; got 70000"},
		{[]string{"demo", "--demo.http-port=-1"}, "--demo.http-port must be a port from 1 to 65535, or 0 for a random one; got -1"},
		{[]string{"demo", "--browser.max-concurrent=0"}, "--browser.max-concurrent must be at least 1, got 0"},
	} {
		args := append(c.args, "--web.listen-address=127.0.0.1:0")
		if c.args[0] == "validate" || c.args[0] == "once" {
			args = c.args
		}
		if c.args[0] == "demo" {
			args = append(args, "--storage.path="+noDir)
		} else {
			args = append(args, "--config.file="+cfg)
		}
		code, out, errs := vantage(t, args...)
		if code != 2 || errs != "vantage: "+c.want+"\n" {
			t.Errorf("vantage %q: exit %d, stderr %q; want exit 2 and %q\n%s", c.args, code, errs, "vantage: "+c.want, out)
		}
	}
}

// TestConfigLimitFlags: the limits' flags reach validate, once and run,
// and the errors name the flag that raises them.
func TestConfigLimitFlags(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "checks:\n  - {name: a, type: tcp, address: '127.0.0.1:1'}\n  - {name: b, type: tcp, address: '127.0.0.1:1'}\n")
	if code, out, errs := vantage(t, "validate", "--config.file="+cfg, "--config.max-checks=2"); code != 0 {
		t.Errorf("2 checks within --config.max-checks=2: exit %d\n%s%s", code, out, errs)
	}
	for _, args := range [][]string{
		{"validate", "--config.max-checks=1"},
		{"once", "--config.max-checks=1"},
		{"run", "--config.max-checks=1", "--web.listen-address=127.0.0.1:0"},
	} {
		code, _, errs := vantage(t, append(args, "--config.file="+cfg)...)
		if want := cfg + ":3:5: more than 1 checks (raise the limit with --config.max-checks)\n"; code != 1 || errs != want {
			t.Errorf("vantage %q: exit %d, stderr %q; want exit 1 and %q", args, code, errs, want)
		}
	}
	code, _, errs := vantage(t, "validate", "--config.file="+cfg, "--config.max-file-size=64")
	if want := cfg + ": config file is larger than 64 bytes (raise the limit with --config.max-file-size)\n"; code != 1 || errs != want {
		t.Errorf("--config.max-file-size=64: exit %d, stderr %q", code, errs)
	}
	code, _, errs = vantage(t, "validate", "--config.file="+cfg, "--config.max-targets=1")
	if want := cfg + ":3:5: more than 1 targets (checks × paths × nodes; raise the limit with --config.max-targets)\n"; code != 1 || errs != want {
		t.Errorf("--config.max-targets=1: exit %d, stderr %q", code, errs)
	}
	code, _, errs = vantage(t, "run", "--config.file="+cfg, "--web.listen-address=127.0.0.1:0", "--config.max-memory=64MiB")
	if want := cfg + ":2:5: the config's 2 targets need about 64.0 MiB of memory, more than the 64.0 MiB vantage may use, --config.max-memory; " +
		"only the checks before this one fit (split the checks over daemons with --shard=I/N, give vantage more memory, or raise the limit with --config.max-memory)\n"; code != 1 || errs != want {
		t.Errorf("--config.max-memory=64MiB: exit %d, stderr %q", code, errs)
	}
	code, _, errs = vantage(t, "run", "--config.file="+cfg, "--web.listen-address=127.0.0.1:0", "--shard=0/2", "--config.max-memory=64MiB")
	if want := "this shard's share of the config's 2 targets (1/2) needs about 64.0 MiB"; code != 1 || !strings.Contains(errs, want) {
		t.Errorf("--config.max-memory=64MiB --shard=0/2: exit %d, stderr %q", code, errs)
	}
	code, _, errs = vantage(t, "validate", "--config.file="+cfg, "--config.max-yaml-nodes=5")
	if code != 1 || !strings.Contains(errs, "(raise the limit with --config.max-yaml-nodes)") {
		t.Errorf("--config.max-yaml-nodes=5: exit %d, stderr %q", code, errs)
	}
}

// TestValidateEmptyConfig: an empty file is an error; a config without
// checks is valid and warns about reloads.
func TestValidateEmptyConfig(t *testing.T) {
	t.Parallel()
	empty := writeConfig(t, "# nothing here yet\n")
	if code, _, errs := vantage(t, "validate", "--config.file="+empty); code != 1 || !strings.Contains(errs, empty+": config file is empty") {
		t.Errorf("validate on an empty file: exit %d, stderr %q", code, errs)
	}
	none := writeConfig(t, "checks: []\n")
	code, out, errs := vantage(t, "validate", "--config.file="+none)
	if code != 0 || !strings.Contains(out, "valid: 0 checks") || !strings.Contains(errs, "warning: "+none+": no checks defined") {
		t.Errorf("validate on a config without checks: exit %d\n%s%s", code, out, errs)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	shop := startTestShop(t)
	cfg := demoConfig(t, shop)
	code, out, errs := vantage(t, "validate", "--config.file="+cfg)
	if code != 0 || !strings.Contains(out, "valid: 8 checks, 2 paths") {
		t.Errorf("validate on the demo config: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}

	broken := writeConfig(t, `global:
  interval: 10s
  timeout: 20s
paths:
  - name: direct
checks:
  - name: shop-home
    type: http
    urll: https://www.shop.test/
  - name: shop-home
    type: tcp
    address: static.shop-cdn.test:443
    paths: [isp-c]
  - name: dns
    type: dns
    query: {name: www.shop.test, type: AAAAA}
    interval: soon
`)
	code, out, errs = vantage(t, "validate", "--config.file="+broken)
	if code != 1 {
		t.Fatalf("validate on a broken config: exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errs)
	}
	lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(broken) + `:\d+:\d+: \S.*$`)
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("not a FILE:LINE:COL: message line: %q", l)
		}
	}
	for _, want := range []string{
		broken + `:9:5: unknown key "urll"`,
		broken + `:10:11: duplicate check name "shop-home"`,
		broken + `:13:13: unknown path "isp-c"`,
		broken + `:17:15: invalid duration "soon"`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing problem %q in:\n%s", want, errs)
		}
	}
	if len(lines) < 5 {
		t.Errorf("want every problem (at least 5) listed, got %d:\n%s", len(lines), errs)
	}

	missing := filepath.Join(t.TempDir(), "missing.yaml")
	if code, _, errs := vantage(t, "validate", "--config.file="+missing); code != 1 || !strings.Contains(errs, missing) {
		t.Errorf("validate on a missing file: exit %d, stderr %q", code, errs)
	}
}

// TestRunRejectsInvalidConfig: `run` with a broken config lists every
// problem, exits 1 and starts nothing (so it returns at once).
func TestRunRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	broken := writeConfig(t, "checks:\n  - name: a\n    type: http\n    urll: https://x.test/\n  - name: b\n    type: nope\n")
	// A run that started anything would not return: the bound catches
	// that, not how fast the rejection is.
	type result struct {
		code int
		errs string
	}
	done := make(chan result, 1)
	go func() {
		code, _, errs := vantage(t, "run", "--config.file="+broken, "--web.listen-address=127.0.0.1:0")
		done <- result{code, errs}
	}()
	var code int
	var errs string
	select {
	case r := <-done:
		code, errs = r.code, r.errs
	case <-time.After(time.Minute):
		t.Fatal("run with an invalid config did not return")
	}
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errs)
	}
	for _, want := range []string{broken + `:4:5: unknown key "urll"`, broken + `:6:11: unknown check type "nope"`} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
}

func TestOnceTable(t *testing.T) {
	t.Parallel()
	shop := startTestShop(t)
	cfg := demoConfig(t, shop)
	code, out, errs := vantage(t, "once", "--config.file="+cfg, "--check=shop-home")
	if code != 0 {
		t.Fatalf("once: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if hdr := strings.Fields(lines[0]); strings.Join(hdr, " ") != "CHECK PATH NODE RESULT TOTAL DNS CONNECT TLS TTFB TRANSFER DETAIL" {
		t.Errorf("header %q", lines[0])
	}
	rows := lines[1:]
	if len(rows) != 6 {
		t.Fatalf("%d rows, want 6 (3 nodes × 2 paths):\n%s", len(rows), out)
	}
	for _, path := range shopPaths {
		for _, node := range shopNodes {
			found := false
			for _, r := range rows {
				f := strings.Fields(r)
				if len(f) >= 5 && f[0] == "shop-home" && f[1] == path && f[2] == node {
					found = true
					if f[3] != "success" {
						t.Errorf("%s/%s: %s", path, node, r)
					}
					// TLS and TTFB were measured (a TLS site, fresh connection).
					if len(f) < 10 || f[7] == "-" || f[8] == "-" {
						t.Errorf("%s/%s: phases missing: %s", path, node, r)
					}
				}
			}
			if !found {
				t.Errorf("no row for shop-home %s %s:\n%s", path, node, out)
			}
		}
	}
	if strings.Contains(out, "shop-product") {
		t.Errorf("--check=shop-home ran other checks:\n%s", out)
	}

	if code, _, errs := vantage(t, "once", "--config.file="+cfg, "--check=no-such-check"); code != 1 || !strings.Contains(errs, "no check matched") {
		t.Errorf("once --check=no-such-check: exit %d, stderr %q", code, errs)
	}
}

func TestOnceJSON(t *testing.T) {
	t.Parallel()
	shop := startTestShop(t)
	cfg := demoConfig(t, shop)
	code, out, errs := vantage(t, "once", "--config.file="+cfg, "--output=json")
	if code != 0 {
		t.Fatalf("once: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	var results []once.Result
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, r := range results {
		if r.Result != "success" {
			t.Errorf("%s/%s/%s: %s %s", r.Check, r.Path, r.Node, r.Result, r.Reason)
		}
		if r.Check == "shop-home" {
			seen[r.Path+"/"+r.Node] = true
			if len(r.Steps) != 1 || r.Steps[0].Status != 200 || r.Duration <= 0 || r.Cert == nil {
				t.Errorf("shop-home %s/%s: incomplete result %+v", r.Path, r.Node, r)
			}
		}
	}
	if len(seen) != 6 {
		t.Errorf("shop-home entries %v, want 6 (3 nodes × 2 paths)", seen)
	}
	if len(results) != 32 {
		t.Errorf("%d results, want 32 (every target of the demo config)", len(results))
	}
}

func TestOnceFailureExit1(t *testing.T) {
	t.Parallel()
	shop := startTestShop(t, "lb1:error_ratio=1")
	cfg := demoConfig(t, shop)
	code, out, errs := vantage(t, "once", "--config.file="+cfg, "--check=shop-*")
	if code != 1 {
		t.Fatalf("once with lb1 failing: exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, check := range []string{"shop-home", "shop-product"} {
		for _, path := range shopPaths {
			for _, node := range shopNodes {
				var row string
				for _, l := range strings.Split(out, "\n") {
					if f := strings.Fields(l); len(f) > 3 && f[0] == check && f[1] == path && f[2] == node {
						row = l
					}
				}
				want := "success"
				if node == "lb1" {
					want = "failure"
					if !strings.Contains(row, "status 503") {
						t.Errorf("%s/%s/lb1: failing assertion not shown: %q", check, path, row)
					}
				}
				if f := strings.Fields(row); len(f) < 4 || f[3] != want {
					t.Errorf("%s/%s/%s: want %s: %q", check, path, node, want, row)
				}
			}
		}
	}
}

const secret = "Sup3rSecretValue0x7f3a"

// TestOnceNeverPrintsSecrets: secrets from ${VAR} in a failing check's URL,
// headers, body and expectations stay out of `once` output and logs.
func TestOnceNeverPrintsSecrets(t *testing.T) {
	t.Setenv("VANTAGE_TEST_SECRET", secret)
	shop := startTestShop(t, "lb2:refuse", "lb3:stall")
	var checks strings.Builder
	for i, node := range shopNodeIPs {
		fmt.Fprintf(&checks, `  - name: secret-lb%[1]d
    type: http
    url: %[2]s
    timeout: 2s
    nodes: {addresses: [%[3]s]}
    http:
      headers: {Authorization: "Bearer ${VANTAGE_TEST_SECRET}"}
      body: '{"password":"${VANTAGE_TEST_SECRET}"}'
    expect:
      status: [200]
      body_contains: ["${VANTAGE_TEST_SECRET}"]
`, i+1, shop.URL(demo.WWWHost, "/?token=${VANTAGE_TEST_SECRET}"), node)
	}
	cfgText := shop.ConfigWithOptions(demo.ConfigOptions{NoAlerts: true})
	cfgText = cfgText[:strings.Index(cfgText, "checks:\n")] + "checks:\n" + checks.String()
	cfg := writeConfig(t, cfgText)

	for _, output := range []string{"table", "json"} {
		code, out, errs := vantage(t, "--log.level=debug", "once", "--config.file="+cfg, "--output="+output)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (every run fails)\n%s\n%s", output, code, out, errs)
		}
		for _, want := range []string{"failure", "error", "timeout", "<secret>"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q:\n%s", output, want, out)
			}
		}
		if strings.Contains(out+errs, secret) {
			t.Errorf("%s: the secret leaked:\nstdout: %s\nstderr: %s", output, out, errs)
		}
	}
}
