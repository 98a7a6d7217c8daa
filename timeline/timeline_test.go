package timeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
	"github.com/vantage-monitoring/vantage/storage"
)

var t0 = time.Date(2025, 11, 28, 20, 0, 0, 0, time.UTC) // 21:00 in Amsterdam

func at(min, sec int) time.Time {
	return t0.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
}

// incident is the evening from the spec: lb2 goes bad, the webhook is down
// for a while, the alert fires, an early flap, a reload, and recovery.
func incident() []storage.Event {
	tgt := func(k storage.Kind, m, s int, path, node, detail string) storage.Event {
		return storage.Event{Time: at(m, s), Kind: k, Check: "shop-home", Path: path, Node: node,
			TargetKey: "shop-home/" + path + "/" + node, Detail: detail}
	}
	evs := []storage.Event{
		{Time: at(0, 0), Kind: storage.DaemonStart, Detail: "version 0.1.0"},
		// An early flap on lb2 over the direct path.
		tgt(storage.TargetDown, 1, 0, "direct", "lb2", "GET https://www.shop.test/: connection refused"),
		tgt(storage.TargetUp, 1, 30, "direct", "lb2", "down for 30s"),
		tgt(storage.TargetDown, 2, 0, "direct", "lb2", "GET https://www.shop.test/: connection refused"),
		// Another place in between does not break the run.
		tgt(storage.TargetDown, 2, 10, "alt-source", "lb2", "GET https://www.shop.test/: connection refused"),
		tgt(storage.TargetUp, 2, 30, "direct", "lb2", "down for 30s"),
		tgt(storage.TargetDown, 3, 0, "direct", "lb2", "GET https://www.shop.test/: status 503 | not in [200]"),
		{Time: at(3, 10), Kind: storage.AlertPending, Alert: "LoadBalancerNodeDegraded", Node: "lb2"},
		{Time: at(3, 40), Kind: storage.AlertFiring, Alert: "LoadBalancerNodeDegraded", Node: "lb2", Detail: "p90 2.1s vs siblings 0.12s"},
	}
	// The webhook receiver is down: 14 failed deliveries, 30 s apart.
	for i := range 14 {
		d := "POST http://127.0.0.1:9099/hook: connection refused"
		if i == 13 {
			d = "503 Service Unavailable"
		}
		evs = append(evs, storage.Event{Time: at(3, 45).Add(time.Duration(i) * 30 * time.Second), Kind: storage.NotificationFailed,
			Alert: "LoadBalancerNodeDegraded", Node: "lb2", Notifier: "webhook", Detail: d})
	}
	evs = append(evs,
		storage.Event{Time: at(11, 0), Kind: storage.NotificationSent, Alert: "LoadBalancerNodeDegraded", Node: "lb2", Notifier: "webhook"},
		storage.Event{Time: at(12, 0), Kind: storage.ConfigReload, Detail: "checks: 1 added (static-cdn), 0 removed, 1 changed (shop-home)"},
		// Much later, beyond the gap: not folded with the previous DOWN.
		tgt(storage.TargetUp, 40, 0, "direct", "lb2", "down for 37m0s"),
		tgt(storage.TargetUp, 40, 5, "alt-source", "lb2", "down for 37m55s"),
		storage.Event{Time: at(41, 0), Kind: storage.AlertResolved, Alert: "LoadBalancerNodeDegraded", Node: "lb2", Detail: "resolved after 37m; fired 1 time in the last hour"},
	)
	return evs
}

func TestMarkdownGolden(t *testing.T) {
	ams, err := ParseLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		loc  *time.Location
	}{
		{"incident_amsterdam.md", ams},
		{"incident_utc.md", time.UTC},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := Markdown(&b, incident(), t0, t0.Add(time.Hour), Options{Location: tc.loc}); err != nil {
				t.Fatal(err)
			}
			testenv.Golden(t, tc.file, b.Bytes())
		})
	}
}

func TestMarkdownAcrossDaysAndEmpty(t *testing.T) {
	var b bytes.Buffer
	evs := []storage.Event{{Time: t0, Kind: storage.DaemonStart}, {Time: t0.Add(26 * time.Hour), Kind: storage.DaemonStop}}
	if err := Markdown(&b, evs, t0.Add(-time.Hour), t0.Add(27*time.Hour), Options{Location: time.UTC, All: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| 2025-11-28 20:00:00 | vantage started |") || !strings.Contains(b.String(), "| 2025-11-29 22:00:00 | vantage stopped |") {
		t.Fatalf("multi-day range needs dates:\n%s", b.String())
	}
	b.Reset()
	if err := Markdown(&b, nil, t0, t0.Add(time.Hour), Options{Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "No events in this range.") || strings.Contains(b.String(), "| Time |") {
		t.Fatalf("empty:\n%s", b.String())
	}
}

func TestFoldRules(t *testing.T) {
	rows := Fold(incident(), 0)
	var got []string
	for _, r := range rows {
		got = append(got, r.what()+" @ "+r.Where)
	}
	want := []string{
		"vantage started @ vantage",
		"flapping: 3× DOWN, 2× UP (ended DOWN) @ shop-home/direct/lb2",
		"DOWN @ shop-home/alt-source/lb2",
		"alert pending @ LoadBalancerNodeDegraded, lb2",
		"alert firing @ LoadBalancerNodeDegraded, lb2",
		"14× notification failed @ LoadBalancerNodeDegraded, lb2 → webhook",
		"notification sent @ LoadBalancerNodeDegraded, lb2 → webhook",
		"config reloaded @ vantage",
		"UP @ shop-home/direct/lb2",
		"UP @ shop-home/alt-source/lb2",
		"alert resolved @ LoadBalancerNodeDegraded, lb2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A single outage (DOWN then UP) keeps both edges.
	two := Fold([]storage.Event{
		{Time: at(0, 0), Kind: storage.TargetDown, Check: "c"},
		{Time: at(1, 0), Kind: storage.TargetUp, Check: "c"},
	}, time.Hour)
	if len(two) != 2 || two[0].Kind != storage.TargetDown || two[1].Kind != storage.TargetUp {
		t.Fatalf("outage folded: %+v", two)
	}
	// Same kind and place but beyond the gap: two rows.
	apart := Fold([]storage.Event{
		{Time: at(0, 0), Kind: storage.NotificationFailed, Notifier: "n"},
		{Time: at(10, 0), Kind: storage.NotificationFailed, Notifier: "n"},
	}, 5*time.Minute)
	if len(apart) != 2 {
		t.Fatalf("events beyond the gap folded: %d rows", len(apart))
	}
}

func TestCellEscapesTableSyntax(t *testing.T) {
	if got := cell("a | b\nc <script>"); got != `a \| b c &lt;script>` {
		t.Fatalf("cell = %q", got)
	}
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	evs := incident()[:2]
	evs[1].RunID = 42
	if err := JSON(&b, evs, t0, t0.Add(time.Hour), Options{Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Since, Until, Timezone string
		Events                 []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Since != "2025-11-28T20:00:00Z" || doc.Timezone != "UTC" || len(doc.Events) != 2 {
		t.Fatalf("doc: %s", b.String())
	}
	e := doc.Events[1]
	for k, v := range map[string]any{"kind": "target_down", "check": "shop-home", "path": "direct", "node": "lb2",
		"target": "shop-home/direct/lb2", "run_id": 42.0, "time": "2025-11-28T20:01:00Z"} {
		if e[k] != v {
			t.Errorf("event[%q] = %v, want %v", k, e[k], v)
		}
	}
	if _, ok := e["alert"]; ok {
		t.Error("empty fields should be omitted")
	}
}

func TestParseRange(t *testing.T) {
	now := time.Date(2025, 11, 28, 22, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		since, until string
		from, to     time.Time
		err          string
	}{
		{"2h", "", now.Add(-2 * time.Hour), now, ""},
		{"", "", now.Add(-2 * time.Hour), now, ""},
		{"30m", "10m", now.Add(-30 * time.Minute), now.Add(-10 * time.Minute), ""},
		{"1d", "now", now.Add(-24 * time.Hour), now, ""},
		{"1h30m", "", now.Add(-90 * time.Minute), now, ""},
		{"2025-11-28T21:00:00+01:00", "2025-11-28T21:30:00Z", time.Date(2025, 11, 28, 20, 0, 0, 0, time.UTC), time.Date(2025, 11, 28, 21, 30, 0, 0, time.UTC), ""},
		{"1764360000", "", time.Unix(1764360000, 0), now, ""},
		{"10m", "2h", time.Time{}, time.Time{}, "is after until"},
		{"yesterday", "", time.Time{}, time.Time{}, "since: invalid time \"yesterday\""},
		{"1h", "soon", time.Time{}, time.Time{}, "until: invalid time"},
		{"-2h", "", time.Time{}, time.Time{}, "since: invalid time"},
		{"2025-13-01T00:00:00Z", "", time.Time{}, time.Time{}, "since: invalid time"},
		// Beyond what the store's int64 nanoseconds hold: the Unix value
		// used to wrap around into a time that could not be encoded, and
		// an inverted range slipped through.
		{"99999999999999999999", "", time.Time{}, time.Time{}, `since: time "99999999999999999999" is out of range: want a time between 1677-09-21T00:12:43Z and 2262-04-11T23:47:16Z`},
		{"1h", "99999999999999999999", time.Time{}, time.Time{}, "until: time \"99999999999999999999\" is out of range"},
		{"1e300", "", time.Time{}, time.Time{}, "since: time \"1e300\" is out of range"},
		{"9999999999", "", time.Time{}, time.Time{}, "since: time \"9999999999\" is out of range"},
		{"0001-01-01T00:00:00Z", "", time.Time{}, time.Time{}, "since: time \"0001-01-01T00:00:00Z\" is out of range"},
		{"1h", "9999-12-31T23:59:59Z", time.Time{}, time.Time{}, "until: time \"9999-12-31T23:59:59Z\" is out of range"},
		{"86400", "2262-04-11T00:00:00Z", time.Unix(86400, 0), time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC), ""},
	} {
		from, to, err := ParseRange(tc.since, tc.until, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRange(%q, %q) error = %v, want %q", tc.since, tc.until, err, tc.err)
			}
			continue
		}
		if err != nil || !from.Equal(tc.from) || !to.Equal(tc.to) {
			t.Errorf("ParseRange(%q, %q) = %s, %s, %v; want %s, %s", tc.since, tc.until, from, to, err, tc.from, tc.to)
		}
	}
}

func TestParseLocation(t *testing.T) {
	for name, want := range map[string]string{"": "Local", "Local": "Local", "UTC": "UTC", "Asia/Tokyo": "Asia/Tokyo"} {
		loc, err := ParseLocation(name)
		if err != nil || loc.String() != want {
			t.Errorf("ParseLocation(%q) = %v, %v", name, loc, err)
		}
	}
	if _, err := ParseLocation("Mars/Olympus"); err == nil || !strings.Contains(err.Error(), "unknown time zone") {
		t.Errorf("bad zone: %v", err)
	}
}

func TestDiffConfigs(t *testing.T) {
	old := &checks.Config{Checks: []checks.Check{{Name: "a", Spec: &httpprobe.Config{URL: "http://a"}}, {Name: "b", Spec: &httpprobe.Config{URL: "http://b"}}, {Name: "c"}}}
	cur := &checks.Config{Checks: []checks.Check{{Name: "a", Spec: &httpprobe.Config{URL: "http://a"}}, {Name: "b", Spec: &httpprobe.Config{URL: "http://b2"}}, {Name: "d"}}}
	d := DiffConfigs(old, cur)
	if got := d.Summary(); got != "checks: 1 added (d), 1 removed (c), 1 changed (b)" {
		t.Fatalf("summary = %q", got)
	}
	if string(d.JSON()) != `{"checks_added":["d"],"checks_removed":["c"],"checks_changed":["b"]}` {
		t.Fatalf("json = %s", d.JSON())
	}
	if got := DiffConfigs(cur, cur).Summary(); got != "checks: 0 added, 0 removed, 0 changed" {
		t.Fatalf("no change: %q", got)
	}
}

// story is the demo's scripted evening: a healthy period with a pending
// alert that never fires and a one-off DOWN/UP, then lb2 slow (its node
// alert pending, firing and paged, a per-check alert folded into it,
// flapping targets, a reload, recovery), a CDN domain failing as a second
// incident whose pages first fail, and a later pending on lb2 that never
// fires.
func story() []storage.Event {
	var id int64
	ev := func(m, s int, k storage.Kind, e storage.Event) storage.Event {
		id++
		e.ID, e.Time, e.Kind = id, at(m, s), k
		return e
	}
	tgt := func(m, s int, k storage.Kind, check, path, node, detail string) storage.Event {
		return ev(m, s, k, storage.Event{Check: check, Path: path, Node: node, TargetKey: check + "/" + path + "/" + node, Detail: detail})
	}
	const node, slow, dom = "LoadBalancerNodeDegraded", "ShopSlowForCustomers", "DependencyDomainFailing"
	nodeAlert := storage.Event{Alert: node, Node: "lb2"}
	slowAlert := storage.Event{Alert: slow, Check: "shop-checkout", Path: "direct", Node: "lb2"}
	cdn := storage.Event{Alert: dom, Check: "web-checkout", Domain: "cdn.shop.test"}
	with := func(e storage.Event, detail, notifier string) storage.Event {
		e.Detail, e.Notifier = detail, notifier
		if notifier != "" {
			e.Domain = "" // notifications carry the alert's place, not its domain
		}
		return e
	}
	evs := []storage.Event{
		ev(0, 0, storage.DaemonStart, storage.Event{Detail: "7 checks over 2 paths"}),
		ev(2, 0, storage.AlertPending, storage.Event{Alert: slow, Check: "shop-home", Path: "direct", Node: "lb1", Detail: "p99 = 1.6s"}),
		tgt(4, 0, storage.TargetDown, "shop-home", "direct", "lb3", "GET https://www.shop.test/: timeout"),
		tgt(4, 30, storage.TargetUp, "shop-home", "direct", "lb3", "down for 30s"),
		// lb2 goes slow.
		ev(10, 0, storage.AlertPending, with(nodeAlert, "node_degraded = 1", "")),
		ev(10, 30, storage.AlertFiring, with(nodeAlert, "node_degraded = 1", "")),
		ev(10, 31, storage.NotificationSent, with(nodeAlert, "firing", "demo-room")),
		ev(11, 0, storage.AlertPending, with(slowAlert, "p99 = 1.8s", "")),
		ev(11, 30, storage.AlertFiring, with(slowAlert, "p99 = 2.1s (folded into LoadBalancerNodeDegraded|node=lb2)", "")),
		tgt(12, 0, storage.TargetDown, "shop-home", "alt-source", "lb2", "GET https://www.shop.test/: timeout after 2s"),
		tgt(12, 30, storage.TargetUp, "shop-home", "alt-source", "lb2", "down for 30s"),
		tgt(13, 0, storage.TargetDown, "shop-home", "alt-source", "lb2", "GET https://www.shop.test/: timeout after 2s"),
		tgt(13, 30, storage.TargetUp, "shop-home", "alt-source", "lb2", "down for 30s"),
		tgt(14, 0, storage.TargetDown, "shop-home", "alt-source", "lb2", "GET https://www.shop.test/: status 503 | not in [200]"),
		ev(15, 0, storage.ConfigReload, storage.Event{Detail: "checks: 0 added, 0 removed, 1 changed (shop-home)"}),
		tgt(16, 0, storage.TargetUp, "shop-home", "alt-source", "lb2", "down for 2m0s"),
		ev(18, 0, storage.AlertResolved, with(slowAlert, "resolved after 6m30s", "")),
		ev(19, 0, storage.AlertResolved, with(nodeAlert, "resolved after 8m30s; fired 1 time in the last hour", "")),
		ev(19, 1, storage.NotificationSent, with(nodeAlert, "resolved", "demo-room")),
		// The CDN fails; the first pages do not get through.
		ev(25, 0, storage.AlertPending, with(cdn, "domain_error_ratio = 0.35", "")),
		ev(25, 30, storage.AlertFiring, with(cdn, "domain_error_ratio = 0.42", "")),
	}
	for i := range 3 {
		evs = append(evs, ev(25, 31+i*30, storage.NotificationFailed, with(cdn, "POST http://127.0.0.1:9099/hook: connection refused", "demo-room")))
	}
	evs = append(evs,
		ev(27, 1, storage.NotificationSent, with(cdn, "firing", "demo-room")),
		ev(33, 0, storage.AlertResolved, with(cdn, "resolved after 7m30s", "")),
		// Later, lb2 looks slow once more but it never fires.
		ev(40, 0, storage.AlertPending, with(nodeAlert, "node_degraded = 1", "")),
		ev(50, 0, storage.DaemonStop, storage.Event{}),
	)
	return evs
}

func TestIncidentStory(t *testing.T) {
	evs := story()
	until := t0.Add(time.Hour)
	render := func(o Options) string {
		t.Helper()
		o.Location = time.UTC
		var b bytes.Buffer
		if err := Markdown(&b, evs, t0, until, o); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	md := render(Options{})
	testenv.Golden(t, "story.md", []byte(md))
	if n := strings.Count(md, "#### Incident "); n != 2 {
		t.Errorf("%d incidents, want 2:\n%s", n, md)
	}
	for _, want := range []string{
		"2 incidents: node lb2 (20:10:00, 9m), domain cdn.shop.test (20:25:00, 8m).",
		"#### Incident 20251128-201000-lb2: node lb2",
		"- **Start:** 20:10:00 — alert pending, LoadBalancerNodeDegraded, lb2",
		"- **Detected:** 20:10:30 (+30s) — alert firing, LoadBalancerNodeDegraded, lb2",
		"| p99 = 2.1s (folded into LoadBalancerNodeDegraded, lb2) |",
		"- **Notified:** 20:10:31 (+31s) via demo-room",
		"- **Resolved:** 20:19:00",
		"worst node_degraded = 1, p99 = 2.1s",
		"shop-checkout via direct; shop-home via alt-source",
		"#### Incident 20251128-202500-cdn.shop.test: domain cdn.shop.test",
		"- **Failed deliveries:** 3",
		"| 20:25:31–20:26:31 | 3× notification failed |",
		"| 20:15:00 | config reloaded | vantage |",
		"left out (`--all`, or `all=true` in the API, shows them)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// Nothing from the healthy period or the later pending by default,
	// and the two pages of lb2 (firing, resolved) stay two rows.
	for _, bad := range []string{"lb1", "lb3", "20:40:00", "vantage started", "<details>", "2× notification sent"} {
		if strings.Contains(md, bad) {
			t.Errorf("default markdown has %q:\n%s", bad, md)
		}
	}

	all := render(Options{All: true})
	testenv.Golden(t, "story_all.md", []byte(all))
	for _, want := range []string{"<details>", "Not paged: 6 events", "| 20:02:00 | alert pending | ShopSlowForCustomers, shop-home/direct/lb1 | p99 = 1.6s |",
		"| 20:04:00 | DOWN | shop-home/direct/lb3 |", "| 20:40:00 | alert pending | LoadBalancerNodeDegraded, lb2 |", "| 20:00:00 | vantage started |"} {
		if !strings.Contains(all, want) {
			t.Errorf("--all lacks %q:\n%s", want, all)
		}
	}

	one := render(Options{Incident: "20251128-202500-cdn.shop.test"})
	if !strings.HasPrefix(one, "### Incident 20251128-202500-cdn.shop.test: domain cdn.shop.test\n") ||
		strings.Contains(one, "lb2") || !strings.HasSuffix(one, "\nTimes in UTC.\n") {
		t.Errorf("one incident:\n%s", one)
	}
	var b bytes.Buffer
	err := Markdown(&b, evs, t0, until, Options{Incident: "20251128-201000-lb3"})
	var missing *NoIncidentError
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "incidents: 20251128-201000-lb2, 20251128-202500-cdn.shop.test") {
		t.Errorf("unknown incident: %v", err)
	}

	doc, err := NewDocument(evs, t0, until, Options{Location: time.UTC})
	if err != nil || len(doc.Events) != len(evs) || len(doc.Incidents) != 2 {
		t.Fatalf("document: %d events, %d incidents, %v", len(doc.Events), len(doc.Incidents), err)
	}
	lb2 := doc.Incidents[0]
	if lb2.ID != "20251128-201000-lb2" || lb2.CauseKind != "node" || !lb2.Paged || lb2.DurationSeconds != 540 ||
		lb2.Notified == nil || !lb2.Notified.Equal(at(10, 31)) || len(lb2.EventIDs) != 15 {
		t.Errorf("lb2 incident: %+v", lb2)
	}
	doc, _ = NewDocument(evs, t0, until, Options{Location: time.UTC, All: true})
	if len(doc.Incidents) != 5 {
		t.Errorf("with all: %d incidents, want 5 (2 paged, lb1's pending, lb3's DOWN/UP, lb2's later pending)", len(doc.Incidents))
	}
	doc, _ = NewDocument(evs, t0, until, Options{Location: time.UTC, Incident: lb2.ID})
	if len(doc.Incidents) != 1 || len(doc.Events) != 15 {
		t.Errorf("one incident's document: %d incidents, %d events", len(doc.Incidents), len(doc.Events))
	}
}

// TestIncidentsSplitEpisodes: the same cause going bad twice with a quiet
// gap between is two incidents, one still open at the end of the range is
// ongoing, and a node leaving DNS closes its DOWN target.
func TestIncidentsSplitEpisodes(t *testing.T) {
	down := func(m int, k storage.Kind) storage.Event {
		return storage.Event{Time: at(m, 0), Kind: k, Check: "c", Path: "p", Node: "lb2", TargetKey: "c/p/lb2"}
	}
	fire := func(m int, k storage.Kind) storage.Event {
		return storage.Event{Time: at(m, 0), Kind: k, Alert: "A", Node: "lb2"}
	}
	incs, _ := Incidents([]storage.Event{
		fire(0, storage.AlertFiring), down(1, storage.TargetDown), fire(2, storage.AlertResolved), down(3, storage.TargetUp),
		fire(20, storage.AlertFiring), down(21, storage.TargetDown), down(22, storage.NodeRemoved),
		fire(40, storage.AlertPending),
	}, at(60, 0), 0)
	if len(incs) != 2 {
		t.Fatalf("%d incidents, want 2", len(incs))
	}
	if r := incs[0].Resolved; r == nil || !r.Equal(at(3, 0)) || incs[0].ID != "20251128-200000-lb2" {
		t.Errorf("first: %+v", incs[0])
	}
	// The alert still fires at the end: ongoing, and the later pending is
	// part of it rather than an episode of its own.
	if incs[1].Resolved != nil || incs[1].DurationSeconds != 40*60 || len(incs[1].events) != 4 {
		t.Errorf("second: %+v", incs[1])
	}
	// Without the node_removed, the first DOWN (never UP) would hold the
	// cause open and swallow the next one.
	incs, _ = Incidents([]storage.Event{down(0, storage.TargetDown), down(1, storage.NodeRemoved), down(10, storage.TargetDown)}, at(60, 0), 0)
	if len(incs) != 2 || incs[0].Resolved == nil || incs[1].Resolved != nil {
		t.Errorf("node removed: %d incidents", len(incs))
	}
	// A range that starts after the alert fired still shows the incident
	// its resolve ends.
	var b bytes.Buffer
	if err := Markdown(&b, []storage.Event{fire(5, storage.AlertResolved)}, t0, at(60, 0), Options{Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	if md := b.String(); !strings.Contains(md, "1 incident: node lb2") || !strings.Contains(md, "- **Detected:** before this range") {
		t.Errorf("incident cut by the range:\n%s", md)
	}
}

// TestDownNamingAFailingDomainIsThatDomainsIncident: with lb2 degraded and
// the CDN refusing at the same time, the browser journey pinned to lb2 goes
// DOWN because of the CDN, and its reason says so; the DOWN and its UP are
// the CDN's incident, while a DOWN whose reason names the shop's own host
// stays with lb2. A domain only as the tail of a longer host name, or one
// failing long before, does not take a DOWN.
func TestDownNamingAFailingDomainIsThatDomainsIncident(t *testing.T) {
	tgt := func(m int, k storage.Kind, check, node, detail string) storage.Event {
		return storage.Event{Time: at(m, 0), Kind: k, Check: check, Path: "direct", Node: node,
			TargetKey: check + "/direct/" + node, Detail: detail}
	}
	alert := func(m int, k storage.Kind, e storage.Event) storage.Event {
		e.Time, e.Kind = at(m, 0), k
		return e
	}
	nodeAlert := storage.Event{Alert: "LoadBalancerNodeDegraded", Node: "lb2"}
	cdn := storage.Event{Alert: "DependencyDomainFailing", Check: "web-checkout", Domain: "cdn.shop.test"}
	old := storage.Event{Alert: "DependencyDomainFailing", Check: "web-checkout", Domain: "pay.test"}
	incs, _ := Incidents([]storage.Event{
		alert(0, storage.AlertFiring, old), alert(1, storage.AlertResolved, old),
		alert(30, storage.AlertFiring, nodeAlert),
		// Before the CDN's own alert, within the gap: still the CDN's.
		tgt(31, storage.TargetDown, "web-checkout", "lb2", "03-click: GET https://cdn.shop.test/app.js: connection refused"),
		alert(32, storage.AlertFiring, cdn),
		tgt(33, storage.TargetDown, "shop-home", "lb2", "GET https://www.shop.test/: timeout after 2s"),
		tgt(34, storage.TargetDown, "web-checkout", "lb1", "GET https://static.cdn.shop.test.example/x: refused; pay.test too"),
		tgt(36, storage.TargetUp, "web-checkout", "lb2", "down for 5m0s"),
		tgt(36, storage.TargetUp, "shop-home", "lb2", "down for 3m0s"),
		tgt(36, storage.TargetUp, "web-checkout", "lb1", "down for 2m0s"),
		alert(37, storage.AlertResolved, cdn), alert(38, storage.AlertResolved, nodeAlert),
	}, at(60, 0), 0)
	got := map[string][]string{}
	for _, in := range incs {
		for _, e := range in.events {
			if e.TargetKey != "" {
				got[in.Cause] = append(got[in.Cause], string(e.Kind)+" "+e.TargetKey)
			}
		}
	}
	want := map[string][]string{
		"cdn.shop.test": {"target_down web-checkout/direct/lb2", "target_up web-checkout/direct/lb2"},
		"lb2":           {"target_down shop-home/direct/lb2", "target_up shop-home/direct/lb2"},
		"lb1":           {"target_down web-checkout/direct/lb1", "target_up web-checkout/direct/lb1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets by incident:\n got %v\nwant %v", got, want)
	}
	for _, in := range incs {
		if in.Cause == "cdn.shop.test" && (in.Resolved == nil || !in.Resolved.Equal(at(37, 0)) || !in.Start.Equal(at(31, 0))) {
			t.Errorf("CDN incident: start %v resolved %v, want 20:31 to 20:37", in.Start, in.Resolved)
		}
	}
}
