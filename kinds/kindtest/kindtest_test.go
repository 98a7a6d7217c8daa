package kindtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/internal/once"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/kinds/kindtest"
	"github.com/vantage-monitoring/vantage/schema"
)

// withTestKinds is every kind vantage runs plus the two of this package,
// each added with one line: the whole of wiring a new one.
func withTestKinds() *kinds.Set {
	set := kinds.All(nil)
	set.Kinds = append(set.Kinds, kindtest.Ping{})
	set.Notifiers = append(set.Notifiers, kindtest.Capture{})
	return set
}

// listener accepts and closes connections on loopback until the test ends.
func listener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// receiver records what capture notifiers post.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []kindtest.CaptureMessage
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var m kindtest.CaptureMessage
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) messages() []kindtest.CaptureMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kindtest.CaptureMessage(nil), r.msgs...)
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "vantage.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func config(up, down, hook string) string {
	return fmt.Sprintf(`global:
  interval: 1s
  timeout: 500ms
checks:
  - name: ping-up
    type: ping
    target: %s
    count: 2
    expect: {min_ok: 2, max_duration: 5s}
  - name: ping-down
    type: ping
    target: %s
    count: 1
notifiers:
  - name: ops
    type: capture
    url: %s
    channel: "#ops"
alerts:
  - name: PingDown
    checks: [ping-down]
    when: failures > 0
    window: 1m
`, up, down, hook)
}

// The new kind's and notifier's keys load into their own configs, with
// the defaults they declare.
func TestConfigLoads(t *testing.T) {
	up := listener(t)
	cfg, err := withTestKinds().Registry().Parse([]byte(config(up, closedPort(t), "http://127.0.0.1:9/hook")), "v.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, ok := cfg.Checks[0].Spec.(*kindtest.PingConfig)
	if !ok || pc.Target != up || pc.Count != 2 {
		t.Errorf("ping config %#v", cfg.Checks[0].Spec)
	}
	if cc, ok := cfg.Notifiers[0].Spec.(*kindtest.CaptureConfig); !ok || cc.Channel != "#ops" {
		t.Errorf("capture config %#v", cfg.Notifiers[0].Spec)
	}
	if e, ok := cfg.Checks[0].Expect.Spec.(*kindtest.PingExpect); !ok || e.MinOK != 2 || cfg.Checks[0].Expect.MaxDuration == 0 {
		t.Errorf("ping expect %+v", cfg.Checks[0].Expect)
	}
	if got := cfg.Checks[0].PinHost(); got != "127.0.0.1" {
		t.Errorf("pin host %q", got)
	}
	// Without the one line, the same file names an unknown type.
	if _, err := kinds.Registry().Parse([]byte(config(up, up, "http://127.0.0.1:9/hook")), "v.yaml", nil); err == nil ||
		!strings.Contains(err.Error(), `v.yaml:6:11: unknown check type "ping" (want http, browser, tcp or dns)`) {
		t.Errorf("without the kind: %v", err)
	}
}

// Its keys are checked as strictly as the rest, at FILE:LINE:COL.
func TestValidationErrors(t *testing.T) {
	reg := withTestKinds().Registry()
	for _, tc := range []struct{ text, want string }{
		{"checks:\n  - name: p\n    type: ping\n    target: 127.0.0.1:1\n    count: 0\n", "v.yaml:5:12: count must be between 1 and 10"},
		{"checks:\n  - name: p\n    type: ping\n    target: 127.0.0.1:1\n    count: many\n", `v.yaml:5:12: expected an integer, got "many"`},
		{"checks:\n  - name: p\n    type: ping\n    target: 127.0.0.1:1\n    address: 127.0.0.1:1\n", `v.yaml:5:5: key "address" is not valid for a ping check`},
		{"checks:\n  - name: p\n    type: tcp\n    address: 127.0.0.1:1\n    count: 2\n", `v.yaml:5:5: key "count" is not valid for a tcp check`},
		{"checks:\n  - name: p\n    type: ping\n    target: 127.0.0.1:1\n    counts: 2\n", `v.yaml:5:5: unknown key "counts"`},
		{"checks:\n  - name: p\n    type: ping\n    target: 127.0.0.1:1\n    count: 2\n    expect: {min_ok: 3}\n", "v.yaml:6:22: min_ok must be between 1 and count (2)"},
		{"checks:\n  - name: p\n    type: ping\n    target: 127.0.0.1:1\n    expect: {min_oks: 3}\n", `v.yaml:5:14: unknown key "min_oks"`},
		{"checks:\n  - name: p\n    type: pong\n", `v.yaml:3:11: unknown check type "pong" (want http, browser, tcp, dns or ping)`},
		{"notifiers:\n  - name: n\n    type: capture\n    url: http://127.0.0.1:9/\nchecks: []\n", "v.yaml:2:5: capture notifier needs channel"},
		{"notifiers:\n  - name: n\n    type: webhook\n    url: http://127.0.0.1:9/\n    channel: x\nchecks: []\n", `v.yaml:5:5: unknown key "channel"`},
		{"notifiers:\n  - name: n\n    type: pager\n    url: http://127.0.0.1:9/\nchecks: []\n", `v.yaml:3:11: unknown notifier type "pager" (want alertmanager, webhook, slack or capture)`},
	} {
		_, err := reg.Parse([]byte(tc.text), "v.yaml", nil)
		var es checks.Errors
		if !errors.As(err, &es) {
			t.Errorf("%q: error %v, want %s", tc.text, err, tc.want)
			continue
		}
		found := false
		for _, e := range es {
			found = found || e.Error() == tc.want
		}
		if !found {
			t.Errorf("%q: errors\n%v\nwant %s", tc.text, err, tc.want)
		}
	}
}

// An expect key of the new kind on another kind's check loads with the
// warning every such key gets.
func TestExpectKeyOfAnotherKind(t *testing.T) {
	cfg, err := withTestKinds().Registry().Parse([]byte("checks:\n  - name: p\n    type: tcp\n    address: 127.0.0.1:1\n    expect: {min_ok: 1}\n"), "v.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `v.yaml:5:14: key "min_ok" is not valid for a tcp check's expect and is ignored; it will be an error in a future release`
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Error() != want {
		t.Errorf("warnings %v, want %s", cfg.Warnings, want)
	}
}

// The schema describes the new keys and types.
func TestSchema(t *testing.T) {
	s := schema.Generate(withTestKinds().Registry())
	check, notifier := s.Defs["Check"], s.Defs["Notifier"]
	if c := check.Properties["count"]; c == nil || !strings.Contains(c.Description, "ping") {
		t.Errorf("check property count: %+v", c)
	}
	if c := s.Defs["Expect"].Properties["min_ok"]; c == nil || !strings.Contains(c.Description, "ping") {
		t.Errorf("expect property min_ok: %+v", c)
	}
	if c := check.Properties["target"]; c == nil || c.Type != "string" {
		t.Errorf("check property target: %+v", c)
	}
	if e := check.Properties["type"].Enum; fmt.Sprint(e) != "[http browser tcp dns ping]" {
		t.Errorf("check types %v", e)
	}
	if c := notifier.Properties["channel"]; c == nil || !strings.Contains(c.Description, "capture") {
		t.Errorf("notifier property channel: %+v", c)
	}
	if e := notifier.Properties["type"].Enum; fmt.Sprint(e) != "[alertmanager webhook slack capture]" {
		t.Errorf("notifier types %v", e)
	}
	// The schema accepts a config using them and rejects a misspelt key,
	// as an editor would.
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{config("127.0.0.1:1", "127.0.0.1:2", "http://127.0.0.1:9/hook"), true},
		{strings.Replace(config("127.0.0.1:1", "127.0.0.1:2", "http://127.0.0.1:9/hook"), "count: 2", "counts: 2", 1), false},
	} {
		var doc any
		if err := yaml.Unmarshal([]byte(tc.text), &doc); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(doc); (err == nil) != tc.ok {
			t.Errorf("schema validation of\n%s\n: %v, want ok=%v", tc.text, err, tc.ok)
		}
	}
}

// vantage once runs it and prints its detail line.
func TestOnce(t *testing.T) {
	set := withTestKinds()
	file := writeConfig(t, config(listener(t), closedPort(t), "http://127.0.0.1:9/hook"))
	var stdout, stderr bytes.Buffer
	code := once.Run(set.Registry(), set.Probers(zerolog.Nop()), file, checks.Limits{}, []string{"ping-up"}, "table", &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	out := stdout.String()
	if !strings.Contains(out, "ping-up") || !strings.Contains(out, "success") {
		t.Errorf("no success row for ping-up:\n%s", out)
	}
	var detail string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  pings") {
			detail = line
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(detail), "2/2 connected") {
		t.Errorf("no detail line `pings ... 2/2 connected`:\n%s", out)
	}
}

// hasSeries reports whether exposition text holds a sample of the metric
// starting with prefix whose labels include every one of labels, with a
// value above zero.
func hasSeries(text, prefix string, labels ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if f := strings.Fields(line); ok && len(f) >= 2 && f[1] != "0" {
			return true
		}
	}
	return false
}

// A daemon runs it: its runs are vantage_check_* series on /metrics, and an
// alert on it reaches the new notifier.
func TestDaemon(t *testing.T) {
	set := withTestKinds()
	rc := newReceiver(t)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	d, err := daemon.New(daemon.Options{
		ConfigFile: writeConfig(t, config(listener(t), closedPort(t), rc.URL+"/hook")), StoragePath: t.TempDir(),
		Logger: log, Kinds: set.Registry(), Probers: set.Probers(log), Notifiers: set.Factories(),
		EvalInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancellation")
		}
	})
	base := "http://" + l.Addr().String()

	testenv.Eventually(t, 30*time.Second, "ping runs on /metrics", func() error {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		for _, want := range [][]string{
			{"vantage_check_runs_total{", `check="ping-up"`, `type="ping"`, `result="success"`},
			{"vantage_check_success{", `check="ping-up"`, `type="ping"`},
			{"vantage_check_runs_total{", `check="ping-down"`, `type="ping"`, `result="failure"`},
		} {
			if !hasSeries(string(b), want[0], want[1:]...) {
				return fmt.Errorf("no series %s with %v", want[0], want[1:])
			}
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, "the alert at the capture receiver", func() error {
		for _, m := range rc.messages() {
			for _, a := range m.Alerts {
				if m.Channel == "#ops" && a.Alertname == "PingDown" && a.Check == "ping-down" && a.Status == "firing" {
					return nil
				}
			}
		}
		return fmt.Errorf("received %+v", rc.messages())
	})
}
