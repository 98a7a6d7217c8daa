package slack_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/slack"
	"github.com/vantage-monitoring/vantage/kinds"
)

type slowdown map[string]float64

func (s slowdown) Measure(_ string, se alerting.Series, _ time.Duration) (float64, bool) {
	v, ok := s[se.Target]
	return v, ok
}

// The engine's real annotations, through the slack wording: a node fault
// repeated three times within the hour reads as flapping, and the resolved
// notice says for how long it fired and how often.
func TestEngineFlapWording(t *testing.T) {
	cfg, err := kinds.Registry().Parse([]byte(`
global: {location: ams1, flap_window: 1h}
checks:
  - {name: shop-home, type: http, url: "http://127.0.0.1/"}
alerts:
  - name: LoadBalancerNodeDegraded
    when: node_slowdown > 3
    window: 2m
    for: 30s
    annotations: {summary: "{{ .check }} node {{ .node }} is {{ .value }}x slower"}
`), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	e := alerting.New(alerting.Options{Logger: zerolog.Nop()})
	if err := e.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	series := []alerting.Series{{Target: "t", Labels: map[string]string{"check": "shop-home", "path": "direct", "node": "127.0.0.12"}}}
	m := slowdown{"t": 4.2}
	start := time.Date(2026, 3, 14, 21, 0, 0, 0, time.UTC)
	var last alerting.Transition
	at := start
	for episode := range 3 {
		m["t"] = 4.2
		for range 4 { // 0s, 10s, 20s, 30s → fires at 30s
			for _, tr := range e.Eval(at, series, m) {
				last = tr
			}
			at = at.Add(10 * time.Second)
		}
		if last.To != alerting.Firing {
			t.Fatalf("episode %d: not firing: %+v", episode, last)
		}
		nt := alerting.Notification{Instance: last.Instance, Status: "firing", StartsAt: last.Instance.FiredAt}
		text := slack.Render([]alerting.Notification{nt}, at, time.Hour).Text
		if !strings.HasPrefix(text, ":rotating_light: [FIRING] LoadBalancerNodeDegraded — shop-home via direct node 127.0.0.12 (value 4.2)\n") {
			t.Errorf("episode %d: %s", episode, text)
		}
		if episode == 2 && !strings.Contains(text, "fired 3 times in the last hour (flapping) — first at 21:00 UTC") {
			t.Errorf("third firing does not say flapping:\n%s", text)
		}
		m["t"] = 1
		at = at.Add(7 * time.Minute)
		for _, tr := range e.Eval(at, series, m) {
			last = tr
		}
		if last.To != alerting.Resolved {
			t.Fatalf("episode %d: not resolved: %+v", episode, last)
		}
		nt = alerting.Notification{Instance: last.Instance, Status: "resolved",
			StartsAt: last.Instance.FiredAt, EndsAt: last.Instance.ResolvedAt}
		text = slack.Render([]alerting.Notification{nt}, at, time.Hour).Text
		want := []string{"resolved after 7m; fired once", "resolved after 7m; fired 2 times", "resolved after 7m; fired 3 times"}[episode]
		if !strings.Contains(text, want) || strings.Contains(text, "recovered") {
			t.Errorf("episode %d resolved notice:\n%s", episode, text)
		}
		at = at.Add(5 * time.Minute)
	}
}
