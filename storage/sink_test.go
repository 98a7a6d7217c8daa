package storage

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
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
