package storage

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	browserkind "github.com/vantage-monitoring/vantage/probe/browser"
)

func TestSinkRecordsRunsAndTransitions(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	ctx := t.Context()
	k := s.Sink()
	red := checks.NewRedactor()
	red.Add("hunter22")
	tg := &probe.Target{Key: "home/direct/lb2", Check: &checks.Check{Name: "home"},
		Node: &probe.Node{Name: "lb2", Addr: netip.MustParseAddr("127.0.0.12")}, Redact: red.Redact}

	fail := probe.Outcome{Result: probe.Error, Reason: "GET https://bob:pw@www.shop.test/?token=hunter22: connection refused",
		Start: t0, Duration: 30 * time.Millisecond,
		Steps: []probe.StepResult{{Name: "home", URL: "https://bob:pw@www.shop.test/", Result: probe.Error, Start: t0,
			Duration: 30 * time.Millisecond, Phases: probe.Phases{Connect: 2 * time.Millisecond, HasTLS: true, TLS: 5 * time.Millisecond}}},
		Requests:  []probe.Request{{URL: "https://static.shop-cdn.test/app.js", Domain: "static.shop-cdn.test", Result: "failed", Failure: "net::ERR_CONNECTION_REFUSED", Start: t0}},
		Artifacts: []string{dir + "/artifacts/run.png"},
	}
	k.Observe(&probe.Observation{Target: tg, Outcome: &fail, Up: false, Transition: true})
	k.Observe(&probe.Observation{Target: tg, Outcome: &fail, Up: false})
	ok := probe.Outcome{Result: probe.Success, Start: t0.Add(7 * time.Minute), Duration: 10 * time.Millisecond}
	k.Observe(&probe.Observation{Target: tg, Outcome: &ok, Up: true, Transition: true})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	runs, err := s.RecentRuns(ctx, tg.Key, 10)
	if err != nil || len(runs) != 3 {
		t.Fatalf("runs: %d %v", len(runs), err)
	}
	r := runs[2]
	if r.Check != "home" || r.Node != "lb2" || r.Result != "error" || r.Duration != 30*time.Millisecond {
		t.Fatalf("run: %+v", r)
	}
	all := r.Reason + string(r.Steps) + string(r.Requests)
	if strings.Contains(all, "hunter22") || strings.Contains(all, "bob:pw") {
		t.Fatalf("secret stored: %s", all)
	}
	var steps []Step
	if err := json.Unmarshal(r.Steps, &steps); err != nil || len(steps) != 1 || steps[0].URL != "https://www.shop.test/" ||
		steps[0].Phases == nil || steps[0].Phases.TLS == nil || *steps[0].Phases.TLS != 0.005 || steps[0].Phases.DNS != nil {
		t.Fatalf("steps: %s %v", r.Steps, err)
	}
	var reqs []Request
	if err := json.Unmarshal(r.Requests, &reqs); err != nil || len(reqs) != 1 || reqs[0].Domain != "static.shop-cdn.test" {
		t.Fatalf("requests: %s %v", r.Requests, err)
	}
	if len(r.Artifacts) != 1 || r.Artifacts[0] != "artifacts/run.png" {
		t.Fatalf("artifacts stored as %v, want relative to the storage dir", r.Artifacts)
	}
	evs, _ := s.Events(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if len(evs) != 2 {
		t.Fatalf("events: %+v", evs)
	}
	down, up := evs[0], evs[1]
	if down.Kind != TargetDown || down.Node != "lb2" || down.Check != "home" || !strings.Contains(down.Detail, "connection refused") ||
		strings.Contains(down.Detail, "hunter22") || down.RunID != r.ID {
		t.Fatalf("down event: %+v", down)
	}
	if up.Kind != TargetUp || up.Detail != "down for 7m0s" || up.RunID != runs[0].ID {
		t.Fatalf("up event: %+v", up)
	}
}

func TestStripURLCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://u:p@h/x":                        "https://h/x",
		"Get \"http://u:p@h:80/a?b=c\": refused": "Get \"http://h:80/a?b=c\": refused",
		"no url here@all":                        "no url here@all",
		"https://h/path@x":                       "https://h/path@x",
		"a http://x@y b https://c:d@e/":          "a http://y b https://e/",
	} {
		if got := StripURLCredentials(in); got != want {
			t.Errorf("StripURLCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}

// countRuns counts the rows of the runs table in the store's SQLite file,
// by target.
func countRuns(t *testing.T, s *Store) map[string]int {
	t.Helper()
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.r.QueryContext(t.Context(), `SELECT target_key, count(*) FROM runs GROUP BY target_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSinkStoresOnlyWhatPeopleRead(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{MemoryRuns: 5})
	ctx := t.Context()
	k := s.Sink()
	target := func(key, typ string) *probe.Target {
		c := &checks.Check{Name: key, Type: typ}
		if typ == "browser" {
			c.Spec = &browserkind.Config{}
		}
		return &probe.Target{Key: key, Check: c}
	}
	healthy, flaky, browser := target("healthy", "http"), target("flaky", "http"), target("journey", "browser")
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	ok := func(i int) *probe.Outcome {
		return &probe.Outcome{Result: probe.Success, Start: at(i), Duration: time.Duration(i+1) * time.Millisecond,
			Steps: []probe.StepResult{{Name: "get", Result: probe.Success, Start: at(i)}}}
	}
	fail := func(i int) *probe.Outcome {
		return &probe.Outcome{Result: probe.Failure, Reason: "status 503", Start: at(i), Duration: time.Millisecond}
	}

	// A healthy target: 20 successful runs, none written.
	for i := range 20 {
		k.Observe(&probe.Observation{Target: healthy, Outcome: ok(i), Up: true})
	}
	if n := countRuns(t, s); n["healthy"] != 0 {
		t.Fatalf("a healthy target's successful runs wrote %d rows, want 0", n["healthy"])
	}
	mem, err := s.RecentRuns(ctx, "healthy", 100)
	if err != nil || len(mem) != 5 || mem[0].ID != 0 || !mem[0].Start.Equal(at(19)) || !mem[4].Start.Equal(at(15)) ||
		mem[0].Duration != 20*time.Millisecond || mem[0].Result != "success" || mem[0].Check != "healthy" {
		t.Fatalf("recent runs of the healthy target, want the 5 newest from memory: %+v %v", mem, err)
	}

	// A flaky target under hysteresis: a failure (no transition yet), the
	// first success after it, then a plain success.
	k.Observe(&probe.Observation{Target: flaky, Outcome: ok(0), Up: true})
	k.Observe(&probe.Observation{Target: flaky, Outcome: fail(1), Up: true})
	k.Observe(&probe.Observation{Target: flaky, Outcome: ok(2), Up: true})
	k.Observe(&probe.Observation{Target: flaky, Outcome: ok(3), Up: true})
	// Then it goes DOWN and comes back UP: both transitions are stored,
	// with timeline events linking them.
	k.Observe(&probe.Observation{Target: flaky, Outcome: fail(4), Up: false, Transition: true})
	k.Observe(&probe.Observation{Target: flaky, Outcome: fail(5), Up: false})
	k.Observe(&probe.Observation{Target: flaky, Outcome: ok(6), Up: true, Transition: true})
	k.Observe(&probe.Observation{Target: flaky, Outcome: ok(7), Up: true})
	if n := countRuns(t, s); n["flaky"] != 5 {
		t.Fatalf("flaky target: %d rows, want 5 (3 failures, the first success after a failure, the UP transition)", n["flaky"])
	}
	runs, err := s.RecentRuns(ctx, "flaky", 100)
	if err != nil || len(runs) != 8 {
		t.Fatalf("flaky recent runs: %d %v", len(runs), err)
	}
	var stored []int
	for i, r := range runs {
		if r.ID != 0 {
			stored = append(stored, 7-i)
		}
	}
	if fmt.Sprint(stored) != "[6 5 4 2 1]" {
		t.Errorf("stored runs (by start second) = %v, want [6 5 4 2 1]", stored)
	}
	failed, err := s.LatestFailedRun(ctx, "flaky")
	if err != nil || !failed.Start.Equal(at(5)) || failed.Reason != "status 503" {
		t.Fatalf("latest failed run: %+v %v", failed, err)
	}
	if got, err := s.Run(ctx, failed.ID); err != nil || got.ID != failed.ID {
		t.Fatalf("failed run by id: %+v %v", got, err)
	}
	evs, _ := s.Events(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if len(evs) != 2 || evs[0].RunID == 0 || evs[1].RunID == 0 {
		t.Fatalf("events: %+v", evs)
	}
	for _, e := range evs {
		if r, err := s.Run(ctx, e.RunID); err != nil {
			t.Errorf("%s event links run %d: %v", e.Kind, e.RunID, err)
		} else if e.Kind == TargetUp && (r.Result != "success" || !r.Start.Equal(at(6))) {
			t.Errorf("UP event links %+v, want the successful run at 6s", r)
		}
	}

	// A browser run is stored even when it succeeds on a healthy target.
	for i := range 3 {
		k.Observe(&probe.Observation{Target: browser, Outcome: ok(i), Up: true})
	}
	if n := countRuns(t, s); n["journey"] != 3 {
		t.Fatalf("browser runs: %d rows, want 3", n["journey"])
	}

	// A removed target's memory goes; its stored runs stay.
	k.Forget(flaky)
	k.Forget(healthy)
	if runs, _ := s.RecentRuns(ctx, "healthy", 10); len(runs) != 0 {
		t.Errorf("forgotten healthy target still has %d runs in memory", len(runs))
	}
	if runs, _ := s.RecentRuns(ctx, "flaky", 10); len(runs) != 5 {
		t.Errorf("forgotten flaky target: %d runs, want its 5 stored", len(runs))
	}
}
