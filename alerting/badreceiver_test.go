package alerting_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/notifytest"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/storage"
)

// htmlThanks answers 200 with an HTML page, as a proxy's "OK" page does:
// still success.
func htmlThanks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "<!doctype html><html><body>Thanks!</body></html>")
}

// A receiver that is slow beyond the timeout, redirects, and answers 500s
// before it recovers loses nothing: every notification queued meanwhile is
// delivered once, in order. A 200 with an HTML body is success.
func TestBadReceiverLosesNothing(t *testing.T) {
	// The receiver misbehaves as its script says, one entry per request,
	// then accepts with an HTML page.
	rcv := notifytest.NewReceiver(t, htmlThanks)
	rcv.Script("slow", "redirect", "500", "500", "slow", "500")
	f := newFixture(t)
	f.open(cfgFor(rcv.URL+"/hook", ", timeout: 300ms"))
	// Three episodes while the receiver misbehaves.
	for range 3 {
		f.vals["shop-home/direct/lb2"]["node_slowdown"] = 5
		f.step(50 * time.Second)
		f.vals["shop-home/direct/lb2"]["node_slowdown"] = 1
		f.step(20 * time.Second)
	}
	f.step(time.Minute)
	got, seen := statuses(rcv.Messages(t)), rcv.Answers()
	want := []string{"firing:1", "resolved:1", "firing:2", "resolved:2", "firing:3", "resolved:3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("delivered %v, want %v once each in order (receiver saw %v)", got, want, seen)
	}
	if len(seen) < 7 || strings.Join(seen[:6], " ") != "slow redirect 500 500 slow 500" {
		t.Errorf("receiver saw %v: the script was not played", seen)
	}
	if v := testutil.ToFloat64(f.m.SentCounter("room", "failed")); v < 6 {
		t.Errorf("failed counter = %v, want >= 6 (one per bad answer)", v)
	}
	if v := testutil.ToFloat64(f.m.SentCounter("room", "dropped")); v != 0 {
		t.Errorf("dropped counter = %v, want 0", v)
	}
	if q := testutil.ToFloat64(queueGauge(f)); q != 0 {
		t.Errorf("queue length = %v, want 0", q)
	}
}

// refusingStore is real storage whose Enqueue fails while refuse is set,
// as a locked database or a full disk makes it fail.
type refusingStore struct {
	*storage.Store
	refuse atomic.Bool
}

func (s *refusingStore) Enqueue(ctx context.Context, n storage.Notification) (int64, error) {
	if s.refuse.Load() {
		return 0, errors.New("storage: database is locked (5) (SQLITE_BUSY)")
	}
	return s.Store.Enqueue(ctx, n)
}

// Notifications that storage refuses to queue are held and queued, in
// order, once it accepts writes again: none is lost.
func TestStorageRefusingQueueLosesNothing(t *testing.T) {
	rcv := notifytest.NewReceiver(t, nil)
	st, err := storage.Open(t.TempDir(), storage.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs := &refusingStore{Store: st}
	now := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	vals := table{"shop-home/direct/lb2": {"node_slowdown": 1}}
	logs := &bytes.Buffer{}
	m := alerting.NewManager(alerting.ManagerOptions{Logger: zerolog.New(logs), Store: rs, Factories: factories,
		Measures: vals, Now: func() time.Time { return now },
		Series: func() []alerting.Series { return []alerting.Series{series("shop-home", "direct", "lb2")} }})
	cfg, err := kinds.Registry().Parse([]byte(cfgFor(rcv.URL)), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	step := func(d time.Duration) {
		for end := now.Add(d); now.Before(end); {
			now = now.Add(10 * time.Second)
			m.Eval(ctx, now)
			m.Dispatch(ctx, now)
		}
	}
	rs.refuse.Store(true)
	for range 2 {
		vals["shop-home/direct/lb2"]["node_slowdown"] = 5
		step(50 * time.Second)
		vals["shop-home/direct/lb2"]["node_slowdown"] = 1
		step(20 * time.Second)
	}
	if n := len(rcv.Messages(t)); n != 0 {
		t.Fatalf("delivered %d messages while nothing could be queued", n)
	}
	if !strings.Contains(logs.String(), "notification could not be queued; holding it in memory and retrying") {
		t.Errorf("no clear log line about the refused queue:\n%s", logs.String())
	}
	rs.refuse.Store(false)
	step(30 * time.Second)
	got := statuses(rcv.Messages(t))
	if want := "firing:1 resolved:1 firing:2 resolved:2"; strings.Join(got, " ") != want {
		t.Fatalf("delivered %v, want %s", got, want)
	}
}
