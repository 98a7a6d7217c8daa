package checks_test

// Fuzz targets for the config loader; docs/fuzzing.md lists them and how to
// run them. `go test` runs their seeds (f.Add and testdata/fuzz/) as tests.

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/internal/testenv"

	. "github.com/vantage-monitoring/vantage/checks"
)

// issueSeeds are the hostile configs of issue 11 and their relatives.
var issueSeeds = []string{
	"",
	"\n",
	"---\n",
	"global: &g {interval: 10s, <<: *g}\nchecks:\n  - {name: a, type: tcp, address: 127.0.0.1:1}\n",
	"checks:\n  - name: a\n    type: tcp\n    address: 127.0.0.1:1\n    labels: &l {team: x, <<: *l}\n",
	"a: &a [1, *a]\n",
	"a: &a {b: *a}\nchecks: *a\n",
	// billion laughs
	"a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" +
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
	"checks:\n  - name: \xff\xfe\n    type: tcp\n",
	"\xef\xbb\xbfchecks: []\n",
	"root:$6$saltsalt$8FJ2k1bQqPaY7p0eXH3u1:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\n",
	"global:\n  interval: 99999999999999999999s\n  timeout: 9223372036854775807ns\n",
	"checks:\n  - name: a\n    type: http\n    url: https://x.test/\n    down_after: 99999999999999999999\n    expect: {max_body_size: 99999999999999999999TiB}\n",
	"checks:\n  - name: a\n    type: http\n    url: ${URL}\n    headers: {Authorization: \"Bearer ${TOKEN}\"}\n",
	"checks:\n  - name: ${NAME:-a}\n    type: tcp\n    address: ${ADDR}\n    timeout: ${T:-bad}\n",
	"checks:\n  - name: a\n    type: tcp\n    address: \"${\"\n",
	"alerts:\n  - name: A\n    when: p99 > NaN\n    annotations: {summary: \"{{ range 99999999999 }}x{{ end }}\"}\n",
	"checks:\n  - name: a\n    type: http\n    url: https://x.test/\n    nodes: {addresses: [\"::1\", \"[::1]:0\", 10.0.0.1:99999, {name: n, address: \"fe80::1%eth0\"}]}\n",
	"include: [\"*.yaml\"]\n",
}

// fuzzEnv turns "NAME=value" lines into a getenv. The values it hands out
// that an error must never show (see checkableSecret) are added to
// *secrets as they are looked up.
func fuzzEnv(s string, secrets *[]string) func(string) (string, bool) {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		if ok && checkableSecret(v) {
			*secrets = append(*secrets, v)
		}
		return v, ok
	}
}

// fuzzSecretLen is the shortest secret the redactor has always tracked.
const fuzzSecretLen = 4

// checkableSecret reports whether a plain substring search can tell that v
// was redacted: long enough to be tracked, only letters and digits (so no
// secret can span a placeholder and its neighbours), and not part of the
// placeholder itself.
func checkableSecret(v string) bool {
	if len(v) < fuzzSecretLen || strings.Contains(Placeholder, v) {
		return false
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// reachesOutside reports inputs that could make the loader read a file
// outside the fuzz directory (an include or *_file naming an absolute path,
// or a key spelled with escapes). The loader reads such files whole, so
// the fuzzer must not point it at /dev/zero or the like.
func reachesOutside(data []byte, env string) bool {
	for _, esc := range []string{`\x`, `\u`, `\U`, "\\\n", "\\\r"} {
		if bytes.Contains(data, []byte(esc)) {
			return true
		}
	}
	if !bytes.Contains(data, []byte("include")) && !bytes.Contains(data, []byte("_file")) {
		return false
	}
	return bytes.ContainsAny(data, `/\`) || strings.ContainsAny(env, `/\`)
}

// checkErrs asserts what holds for every load error or warning: it has a
// file (one of files), is one line, and shows no secret.
func checkErrs(t *testing.T, what string, es Errors, secrets []string, files ...string) {
	t.Helper()
	for _, e := range es {
		if e.Pos.File == "" || !contains(files, e.Pos.File) {
			t.Errorf("%s %q: file %q, want one of %q", what, e.Msg, e.Pos.File, files)
		}
		if strings.ContainsAny(e.Msg, "\r\n") {
			t.Errorf("%s is not one line: %q", what, e.Msg)
		}
		if e.Pos.Line < 0 || e.Pos.Col < 0 || e.Pos.Line > 0 && e.Pos.Col == 0 {
			t.Errorf("%s %q: bad position %d:%d", what, e.Msg, e.Pos.Line, e.Pos.Col)
		}
		for _, s := range secrets {
			if strings.Contains(e.Msg, s) {
				t.Errorf("%s shows secret %q: %s", what, s, e.Msg)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// loadResult checks the result of Parse or Load: a nil config comes with
// Errors, a config without, and both obey checkErrs.
func loadResult(t *testing.T, cfg *Config, err error, secrets []string, files ...string) {
	t.Helper()
	if err != nil {
		var es Errors
		if !errors.As(err, &es) {
			t.Fatalf("error is %T, want Errors: %v", err, err)
		}
		if len(es) == 0 || cfg != nil {
			t.Fatalf("error %v with %d entries and config %v", err, len(es), cfg != nil)
		}
		checkErrs(t, "error", es, secrets, files...)
		return
	}
	if cfg == nil {
		t.Fatal("no config and no error")
	}
	checkErrs(t, "warning", cfg.Warnings, secrets, files...)
}

// FuzzParse loads arbitrary config text with an arbitrary environment.
func FuzzParse(f *testing.F) {
	for _, s := range issueSeeds {
		f.Add([]byte(s), "TOKEN=hunter2hunter2\nURL=http://127.0.0.1:1/\nNAME=web")
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "../config.example.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "SLACK_WEBHOOK_URL=http://127.0.0.1:1/hook\nAPI_TOKEN=s3cr3tvalue\nSHOP_PASSWORD=pa55word")
	}
	// An empty directory: relative include and *_file paths find nothing.
	file := filepath.Join(f.TempDir(), "vantage.yml")
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		defer testenv.HangGuard()()
		if reachesOutside(data, env) {
			return
		}
		var secrets []string
		cfg, err := Parse(data, file, fuzzEnv(env, &secrets))
		loadResult(t, cfg, err, secrets, file)
	})
}

// FuzzInclude loads a main file and an included one from a directory.
func FuzzInclude(f *testing.F) {
	const check = "checks:\n  - name: web\n    type: tcp\n    address: 127.0.0.1:1\n"
	f.Add([]byte("include: [team.yaml]\n"+check), []byte("checks:\n  - name: team\n    type: tcp\n    address: 127.0.0.1:2\n"))
	f.Add([]byte("include: [\"*.yaml\"]\n"+check), []byte("checks:\n  - name: web\n    type: tcp\n    address: 127.0.0.1:2\n"))
	f.Add([]byte("include: [team.yaml, team.yaml, missing.yaml, \"[\"]\n"+check), []byte("global: {interval: 1s}\nalerts: [{name: A, when: p99 > 1s}]\n"))
	f.Add([]byte("include: [team.yaml]\n"+check), []byte("checks:\n  - &c {name: t, type: tcp, address: 127.0.0.1:2, labels: {<<: *c}}\n"))
	f.Add([]byte("include: [team.yaml]\n"+check), []byte("root:$6$saltsalt$8FJ2k1bQqPaY7p0eXH3u1:19700:0:99999:7:::\n"))
	f.Add([]byte("include: [team.yaml]\n"+check), []byte("\xff\xfe\x00c\x00h\x00e\x00c\x00k\x00s\x00"))
	f.Add([]byte("include: [team.yaml]\n"+check), []byte(""))
	f.Add([]byte("include: [vantage.yml]\n"+check), []byte("include: [vantage.yml]\n"))
	f.Fuzz(func(t *testing.T, main, inc []byte) {
		defer testenv.HangGuard()()
		if reachesOutside(main, "") || reachesOutside(inc, "") {
			return
		}
		dir := t.TempDir()
		mainFile, incFile := filepath.Join(dir, "vantage.yml"), filepath.Join(dir, "team.yaml")
		if err := os.WriteFile(mainFile, main, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(incFile, inc, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(mainFile, nil)
		// An empty pattern (`include: [""]`) matches the directory, whose
		// read error names the directory without a line: see
		// docs/fuzzing.md.
		loadResult(t, cfg, err, nil, mainFile, incFile, dir)
	})
}

// FuzzExpandEnv expands ${VAR} references with one variable set.
func FuzzExpandEnv(f *testing.F) {
	for _, s := range []string{"", "$", "$$", "${", "${}", "${A}", "${A:-}", "${A:-x}", "${B:-${A}}", "a$$b${A}c",
		"${A:-$}", "${1A}", "${A}${B}${C}", "${A:-}}", "$${A}", "${A:-:-}", "${\xff}"} {
		f.Add(s, "A", "s3cr3t")
		f.Add(s, "A", "")
	}
	f.Fuzz(func(t *testing.T, s, name, val string) {
		defer testenv.HangGuard()()
		getenv := func(k string) (string, bool) {
			if k == name {
				return val, true
			}
			return "", false
		}
		red := NewRedactor()
		out, fromEnv, err := ExpandString(s, getenv, red)
		if !strings.Contains(s, "$") && (out != s || fromEnv || err != nil) {
			t.Fatalf("%q without $ expanded to %q, %v, %v", s, out, fromEnv, err)
		}
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error is not one line: %q", err)
			}
			// An error may quote the config's own text, escaped: "${\x0000}"
			// renders as \x0000, which holds "0000" without leaking it.
			if checkableSecret(val) && !strings.Contains(s, val) && !strings.Contains(strconv.Quote(s), val) &&
				strings.Contains(err.Error(), val) {
				t.Errorf("error shows the value of %s: %v", name, err)
			}
		}
		if err == nil && fromEnv && (val == "" || !strings.Contains(out, val)) {
			t.Errorf("%q: from the environment but %q does not hold %q", s, out, val)
		}
		if fromEnv && checkableSecret(val) && strings.Contains(red.Redact(out), val) {
			t.Errorf("%q: value of %s not redacted in %q", s, name, red.Redact(out))
		}
		// $$ is the escape for $: escaping any text expands back to it.
		esc := strings.ReplaceAll(s, "$", "$$")
		back, fromEnv, err := ExpandString(esc, getenv, nil)
		if back != s || fromEnv || err != nil {
			t.Errorf("escaped %q expanded to %q, %v, %v", esc, back, fromEnv, err)
		}
	})
}

// decodeScalar decodes s as a YAML scalar into a value of type T, as the
// loader does for a config field.
func decodeScalar[T any](s string) (T, Errors) { return DecodeScalar[T](s) }

// FuzzByteSize parses sizes as written in config and as the loader decodes
// them; a size prints back as the same size.
func FuzzByteSize(f *testing.F) {
	for _, s := range []string{"0", "512", "10KB", "10KiB", "1.5MiB", "1GiB", " 2 tb ", "k", ".", "1.", ".5k", "9223372036854775807",
		"9223372036854775808", "99999999999999999999", "8388607TiB", "8388608TiB", "1e3", "-1", "1..2MB", "0.0000001b", "NaN", "Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		defer testenv.HangGuard()()
		b, err := ParseByteSize(s)
		v, es := decodeScalar[ByteSize](s)
		if (err == nil) != (len(es) == 0) || err == nil && v != b {
			t.Fatalf("%q: ParseByteSize %v, %v; loader %v, %v", s, b, err, v, es)
		}
		checkErrs(t, "error", es, nil, "c.yaml")
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error is not one line: %q", err)
			}
			return
		}
		if b < 0 {
			t.Fatalf("%q: negative size %d", s, b)
		}
		if back, err := ParseByteSize(b.String()); err != nil || back != b {
			t.Errorf("%q = %d prints as %q, which parses as %d, %v", s, b, b.String(), back, err)
		}
	})
}

// FuzzDuration decodes durations as the loader does; a duration prints
// back as the same duration.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"0", "0s", "500ms", "1.5s", "30s", "5m", "2h", "7d", "1w", "1y", "1h30m", "99999999999999999999s",
		"9223372036854775807ns", "292y", "293y", "-1s", "1", "s", "", "1µs", "1us", "${A}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		defer testenv.HangGuard()()
		d, es := decodeScalar[model.Duration](s)
		checkErrs(t, "error", es, nil, "c.yaml")
		want, err := model.ParseDuration(s)
		if (err == nil) != (len(es) == 0) || err == nil && d != want {
			t.Fatalf("%q: loader %v, %v; model.ParseDuration %v, %v", s, d, es, want, err)
		}
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q: negative duration %d", s, d)
		}
		if back, err := model.ParseDuration(d.String()); err != nil || back != d {
			t.Errorf("%q = %d prints as %q, which parses as %d, %v", s, d, d.String(), back, err)
		}
	})
}

// FuzzNodeAddr parses node addresses (nodes.addresses) and host:port
// values.
func FuzzNodeAddr(f *testing.F) {
	for _, s := range []string{"10.0.0.11", "10.0.0.13:8443", "::1", "[::1]:8443", "[::1]", "[::1]:0", "10.0.0.1:99999", "10.0.0.1:0",
		"fe80::1%eth0", "[fe80::1%eth0]:80", "::ffff:10.0.0.1", "lb2.x.example", "lb2.x.example:443", ":80", "", "[", "1.2.3.4:+80",
		"1.2.3.4:080", "01.2.3.4", "1.2.3.4:65536", "[1.2.3.4]:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		defer testenv.HangGuard()()
		ip, port, ok := SplitIPPort(s)
		a, es := decodeScalar[NodeAddr](s)
		checkErrs(t, "error", es, nil, "c.yaml")
		if len(es) > 0 || a.Address != s {
			t.Fatalf("%q decodes as %+v, %v", s, a, es)
		}
		if ok {
			if !ip.IsValid() {
				t.Fatalf("%q: invalid IP accepted", s)
			}
			label := a.Label()
			if got, _, ok := SplitIPPort(label); !ok || got != ip || label != ip.String() {
				t.Errorf("%q: label %q does not name IP %s", s, label, ip)
			}
			if port != 0 {
				ap := netip.AddrPortFrom(ip, port).String()
				if got, gotPort, ok := SplitIPPort(ap); !ok || got != ip || gotPort != port {
					t.Errorf("%q: %s reparses as %s %d %v", s, ap, got, gotPort, ok)
				}
			}
		}
		if hp, ok := NormalizeHostPort(s, "443"); ok {
			if !ValidHostPort(hp) {
				t.Errorf("%q normalizes to invalid %q", s, hp)
			}
			if again, ok := NormalizeHostPort(hp, "443"); !ok || again != hp {
				t.Errorf("%q normalizes to %q, then to %q, %v", s, hp, again, ok)
			}
		}
	})
}

// FuzzParseExpr parses alert `when:` conditions; a parsed condition prints
// as text that parses to the same condition.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"p99 > 1.5s", "success_ratio < 0.95", "failures >= 3", "node_slowdown > 3", "domain_p90 <= 800ms",
		"cert_days_left < 14", "p50 > 1d", "p90 > 0.0000000001", "p99 > 1e300", "p99 > 0.1234567891234", "p99 > 2562048h",
		"success_ratio < NaN", "failures > Inf", "failures > -Inf", "p99 >> 1", "p99 => 1", "p99 != 1", "p99 == 1", "", "  p99>1  ",
		"unknown > 1", "p99 > 99999999999999999999", "p99 > 1.5ms5", "p99 > 0x10", "p99 > 1_000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		defer testenv.HangGuard()()
		e, err := ParseExpr(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error is not one line: %q", err)
			}
			return
		}
		if !IsMeasure(e.Measure) || !contains([]string{">", ">=", "<", "<="}, e.Op) {
			t.Fatalf("%q parsed as %#v", s, e)
		}
		if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
			t.Fatalf("%q: condition on %v accepted", s, e.Value)
		}
		if e.Holds(e.Value) != strings.HasSuffix(e.Op, "=") {
			t.Errorf("%q: Holds(%v) = %v", s, e.Value, e.Holds(e.Value))
		}
		text := e.String()
		if !utf8.ValidString(text) {
			t.Errorf("%q prints as invalid UTF-8 %q", s, text)
		}
		back, err := ParseExpr(text)
		if err != nil || back != e {
			t.Errorf("%q = %#v prints as %q, which parses as %#v, %v", s, e, text, back, err)
		}
	})
}
