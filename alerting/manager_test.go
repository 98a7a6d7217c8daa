package alerting_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/alertmanager"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/storage"
)

// statuses lists what msgs delivered, alert by alert, as
// "status:fired_count".
func statuses(msgs []webhook.Message) []string {
	var out []string
	for _, m := range msgs {
		for _, a := range m.Alerts {
			out = append(out, a.Status+":"+a.Annotations["fired_count"])
		}
	}
	return out
}

var factories = map[string]alerting.NotifierFactory{
	"webhook": func(c checks.Notifier, o alerting.NotifierOptions) (alerting.Notifier, error) {
		return webhook.New(c, o)
	},
	"alertmanager": func(c checks.Notifier, o alerting.NotifierOptions) (alerting.Notifier, error) {
		return alertmanager.New(c, o)
	},
}

type fixture struct {
	t     *testing.T
	store *storage.Store
	dir   string
	m     *alerting.Manager
	reg   *prometheus.Registry
	vals  table
	now   time.Time
	// series replaces the one default series when set.
	series []alerting.Series
}

func (f *fixture) open(cfgYAML string) {
	f.t.Helper()
	if f.store != nil {
		f.store.Close()
	}
	st, err := storage.Open(f.dir, storage.Options{Logger: zerolog.Nop(), Now: func() time.Time { return f.now }})
	if err != nil {
		f.t.Fatal(err)
	}
	f.store = st
	cfg, err := kinds.Registry().Parse([]byte(cfgYAML), "test.yaml", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.reg = prometheus.NewRegistry()
	f.m = alerting.NewManager(alerting.ManagerOptions{Logger: zerolog.Nop(), Registerer: f.reg, Store: st,
		Factories: factories, Measures: f.vals, Now: func() time.Time { return f.now },
		Series: func() []alerting.Series {
			if f.series != nil {
				return f.series
			}
			return []alerting.Series{series("shop-home", "direct", "lb2")}
		},
		BackoffBase: time.Second, BackoffMax: 20 * time.Second})
	if err := f.m.Configure(cfg); err != nil {
		f.t.Fatal(err)
	}
	if err := f.m.Restore(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
}

// step advances virtual time by d, evaluating every 10s and dispatching
// every second, as Run does in real time.
func (f *fixture) step(d time.Duration) { f.stepEvery(d, time.Second) }

func (f *fixture) stepEvery(d, tick time.Duration) {
	ctx := context.Background()
	end := f.now.Add(d)
	for f.now.Before(end) {
		f.now = f.now.Add(tick)
		if f.now.Unix()%10 == 0 {
			f.m.Eval(ctx, f.now)
		}
		f.m.Dispatch(ctx, f.now)
	}
}

// cfgFor is a config with one webhook notifier at url, paged by one node
// rule; extra adds settings to the notifier (", timeout: 300ms").
func cfgFor(url string, extra ...string) string {
	return `
global: {location: ams1}
checks: [{name: shop-home, type: http, url: "http://127.0.0.1/"}]
notifiers:
  - {name: room, type: webhook, url: "` + url + `", repeat_interval: 0s, max_age: 1h` + strings.Join(extra, "") + `}
alerts:
  - name: NodeDegraded
    when: node_slowdown > 3
    window: 5m
    for: 30s
    notify: [room]
`
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, dir: t.TempDir(), vals: table{"shop-home/direct/lb2": {"node_slowdown": 1}},
		now: time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)}
}

// The tests below with a notifytest receiver are about vantage's own
// sending: its queue, retries and backoff, what survives a restart,
// max_age, the resend cadence. The receiver records every attempt and can
// fail on demand, which the real Alertmanager cannot be told to do. What
// Alertmanager itself does with what the manager sends runs against the
// real one: TestManagerThroughRealAlertmanager.

func TestReceiverDownThenUpGetsEverythingOnceInOrder(t *testing.T) {
	rcv := notifytest.NewReceiver(t, nil)
	f := newFixture(t)
	f.open(cfgFor(rcv.URL))
	rcv.Fail(http.StatusServiceUnavailable)
	// Three episodes while the receiver is down for over 2 minutes.
	for i := 0; i < 3; i++ {
		f.vals["shop-home/direct/lb2"]["node_slowdown"] = 5
		f.step(50 * time.Second)
		f.vals["shop-home/direct/lb2"]["node_slowdown"] = 1
		f.step(20 * time.Second)
	}
	if n := len(rcv.Messages(t)); n != 0 {
		t.Fatalf("receiver down but got %d messages", n)
	}
	if q := testutil.ToFloat64(queueGauge(f)); q != 6 {
		t.Fatalf("queue length = %v, want 6 (3 firing + 3 resolved)", q)
	}
	rcv.Fail(0)
	f.step(40 * time.Second) // backoff is capped at 20s
	msgs := rcv.Messages(t)
	statuses := statuses(msgs)
	want := []string{"firing:1", "resolved:1", "firing:2", "resolved:2", "firing:3", "resolved:3"}
	if len(statuses) != len(want) {
		t.Fatalf("delivered %v, want %v", statuses, want)
	}
	for i := range want {
		if statuses[i] != want[i] {
			t.Fatalf("delivered %v, want %v (in order, once each)", statuses, want)
		}
	}
	last := msgs[len(msgs)-1].Alerts[len(msgs[len(msgs)-1].Alerts)-1]
	if last.Annotations["flapping"] != "true" || last.Annotations["resolution"] == "" {
		t.Fatalf("last notice lacks flap memory: %v", last.Annotations)
	}
	if v := testutil.ToFloat64(f.m.SentCounter("room", "sent")); v != 6 {
		t.Fatalf("sent counter = %v, want 6", v)
	}
	// More time passes: nothing is delivered twice.
	f.step(2 * time.Minute)
	if n := len(rcv.Messages(t)); n != len(msgs) {
		t.Fatalf("re-delivered: %d messages, had %d", n, len(msgs))
	}
}

func queueGauge(f *fixture) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "q"})
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "vantage_notification_queue_length" {
			for _, m := range mf.GetMetric() {
				g.Set(m.GetGauge().GetValue())
			}
		}
	}
	return g
}

func TestRestartNeitherRepagesNorForgetsResolve(t *testing.T) {
	rcv := notifytest.NewReceiver(t, nil)
	f := newFixture(t)
	f.open(cfgFor(rcv.URL))
	f.vals["shop-home/direct/lb2"]["node_slowdown"] = 5
	f.step(50 * time.Second)
	if n := len(rcv.Messages(t)); n != 1 {
		t.Fatalf("want 1 firing notice before the restart, got %d", n)
	}
	// "Kill" the daemon: a new manager over the same database file.
	f.open(cfgFor(rcv.URL))
	f.step(60 * time.Second)
	if n := len(rcv.Messages(t)); n != 1 {
		t.Fatalf("restart re-paged: %d messages", n)
	}
	f.vals["shop-home/direct/lb2"]["node_slowdown"] = 1
	f.step(20 * time.Second)
	msgs := rcv.Messages(t)
	if len(msgs) != 2 || msgs[1].Status != "resolved" {
		t.Fatalf("want the resolved notice after restart, got %d messages", len(msgs))
	}
	if got := msgs[1].Alerts[0].Annotations["resolution"]; got == "" {
		t.Fatal("resolved notice without resolution text")
	}
	// The timeline has the whole story.
	evs, err := f.store.Events(context.Background(), f.now.Add(-time.Hour), f.now)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[storage.Kind]int{}
	for _, e := range evs {
		kinds[e.Kind]++
	}
	if kinds[storage.AlertFiring] != 1 || kinds[storage.AlertResolved] != 1 || kinds[storage.NotificationSent] != 2 {
		t.Fatalf("timeline kinds %v", kinds)
	}
}

func TestPermanentRejectionAndMaxAge(t *testing.T) {
	rcv := notifytest.NewReceiver(t, nil)
	f := newFixture(t)
	f.open(cfgFor(rcv.URL))
	rcv.Fail(http.StatusBadRequest)
	f.vals["shop-home/direct/lb2"]["node_slowdown"] = 5
	f.step(50 * time.Second)
	if v := testutil.ToFloat64(f.m.SentCounter("room", "failed")); v != 1 {
		t.Fatalf("failed = %v, want 1 (400 is not retried)", v)
	}
	if q := testutil.ToFloat64(queueGauge(f)); q != 0 {
		t.Fatalf("queue = %v after a permanent rejection", q)
	}
	// A receiver down past max_age (1h): the resolved notice is dropped.
	rcv.Fail(http.StatusServiceUnavailable)
	f.vals["shop-home/direct/lb2"]["node_slowdown"] = 1
	f.step(20 * time.Second)
	f.stepEvery(61*time.Minute, 10*time.Second)
	if v := testutil.ToFloat64(f.m.SentCounter("room", "dropped")); v != 1 {
		t.Fatalf("dropped = %v, want 1", v)
	}
}

// TestAlertmanagerResend: vantage's re-send cadence, counted at the
// receiver (Alertmanager keeps no count of posts).
func TestAlertmanagerResend(t *testing.T) {
	am := notifytest.NewReceiver(t, nil)
	f := newFixture(t)
	f.open(`
checks: [{name: shop-home, type: http, url: "http://127.0.0.1/"}]
notifiers: [{name: am, type: alertmanager, url: "` + am.URL + `", resend_interval: 1m}]
alerts: [{name: NodeDegraded, when: node_slowdown > 3, window: 5m}]
`)
	f.vals["shop-home/direct/lb2"]["node_slowdown"] = 5
	f.step(5*time.Minute + 5*time.Second)
	// Fired at 21:00:10, re-sent each minute: 21:01:10 ... 21:05:10.
	posts := 0
	for _, r := range am.Requests() {
		if r.Path == "/api/v2/alerts" {
			posts++
		}
	}
	if n := posts; n < 5 || n > 6 {
		t.Fatalf("alertmanager got %d posts in 5 minutes of firing, want 5-6 (resend every 1m)", n)
	}
}

type amListed struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// amActive lists the active alerts of the Alertmanager at base.
func amActive(t *testing.T, base string) []amListed {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?active=true&silenced=false&inhibited=false")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []amListed
	if err := json.NewDecoder(resp.Body).Decode(&out); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET /api/v2/alerts: %s %v", resp.Status, err)
	}
	return out
}

// TestManagerThroughRealAlertmanager: the manager's alerts as Debian's
// Alertmanager sees them. Two nodes fire: two active alerts with their
// labels and flap memory. A restart of vantage (a new manager on the same
// database) while they fire adds no alert. One node recovers: only the
// other stays active; the second recovers: none. The manager's clock runs
// in virtual time from two minutes ago, so firing leases lie in
// Alertmanager's future and resolutions in its past.
func TestManagerThroughRealAlertmanager(t *testing.T) {
	am := testenv.Alertmanager(t, "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n")
	f := newFixture(t)
	f.now = time.Now().Add(-2 * time.Minute).Truncate(10 * time.Second)
	f.series = []alerting.Series{series("shop-home", "direct", "lb1"), series("shop-home", "direct", "lb2")}
	f.vals = table{"shop-home/direct/lb1": {"node_slowdown": 5}, "shop-home/direct/lb2": {"node_slowdown": 5}}
	cfg := `
global: {location: ams1}
checks: [{name: shop-home, type: http, url: "http://127.0.0.1/"}]
notifiers: [{name: am, type: alertmanager, url: "` + am + `", resend_interval: 1m}]
alerts:
  - name: NodeDegraded
    when: node_slowdown > 3
    window: 5m
    by: [node]
    severity: page
    annotations: {summary: "node {{ .node }} is {{ .value }}x slower"}
`
	f.open(cfg)
	f.step(15 * time.Second)
	active := amActive(t, am)
	if len(active) != 2 {
		t.Fatalf("alertmanager has %d active alerts, want lb1 and lb2: %+v", len(active), active)
	}
	for _, a := range active {
		if a.Labels["alertname"] != "NodeDegraded" || a.Labels["severity"] != "page" || a.Labels["location"] != "ams1" ||
			(a.Labels["node"] != "lb1" && a.Labels["node"] != "lb2") {
			t.Errorf("labels %v", a.Labels)
		}
		if a.Annotations["summary"] != "node "+a.Labels["node"]+" is 5x slower" || a.Annotations["fired_count"] != "1" {
			t.Errorf("annotations %v", a.Annotations)
		}
	}

	f.open(cfg) // restart
	f.step(15 * time.Second)
	if active := amActive(t, am); len(active) != 2 {
		t.Fatalf("after a restart alertmanager has %d active alerts, want the same 2: %+v", len(active), active)
	}

	f.vals["shop-home/direct/lb1"]["node_slowdown"] = 1
	f.step(15 * time.Second)
	active = amActive(t, am)
	if len(active) != 1 || active[0].Labels["node"] != "lb2" {
		t.Fatalf("after lb1 recovered, active: %+v, want lb2 alone", active)
	}
	f.vals["shop-home/direct/lb2"]["node_slowdown"] = 1
	f.step(15 * time.Second)
	if active := amActive(t, am); len(active) != 0 {
		t.Fatalf("after both recovered, active: %+v", active)
	}
	if v := testutil.ToFloat64(f.m.SentCounter("am", "failed")); v != 0 {
		t.Errorf("%v failed sends to the real Alertmanager", v)
	}
}
