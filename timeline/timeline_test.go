package timeline

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/storage"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

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

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
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
			golden(t, tc.file, b.Bytes())
		})
	}
}

func TestMarkdownAcrossDaysAndEmpty(t *testing.T) {
	var b bytes.Buffer
	evs := []storage.Event{{Time: t0, Kind: storage.DaemonStart}, {Time: t0.Add(26 * time.Hour), Kind: storage.DaemonStop}}
	if err := Markdown(&b, evs, t0.Add(-time.Hour), t0.Add(27*time.Hour), Options{Location: time.UTC}); err != nil {
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
	old := &checks.Config{Checks: []checks.Check{{Name: "a", URL: "http://a"}, {Name: "b", URL: "http://b"}, {Name: "c"}}}
	cur := &checks.Config{Checks: []checks.Check{{Name: "a", URL: "http://a"}, {Name: "b", URL: "http://b2"}, {Name: "d"}}}
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
