package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/storage"
)

// TestTimelineBadRange: times the store cannot hold and inverted ranges
// are a usage error (exit 2) naming the flag, as the API's 400 bad_data.
func TestTimelineBadRange(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(dir, storage.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since=99999999999999999999"}, `vantage: since: time "99999999999999999999" is out of range`},
		{[]string{"--since=1h", "--until=99999999999999999999"}, `vantage: until: time "99999999999999999999" is out of range`},
		{[]string{"--since=10m", "--until=1h", "--format=json"}, "vantage: since ("},
	} {
		code, stdout, stderr := vantage(t, append([]string{"timeline", "--storage.path=" + dir}, tc.args...)...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("timeline %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
	// The same range within bounds works.
	if code, stdout, stderr := vantage(t, "timeline", "--storage.path="+dir, "--since=86400", "--until=2262-04-11T00:00:00Z"); code != 0 {
		t.Errorf("in-range timeline: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestTimelineIncidents: by default only incidents where an alert fired
// are printed, --all adds what never paged, --incident prints one and an
// unknown ID exits 1 naming the known ones.
func TestTimelineIncidents(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(dir, storage.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	for _, e := range []storage.Event{
		{Time: start.Add(-10 * time.Minute), Kind: storage.AlertPending, Alert: "Slow", Check: "home", Path: "direct", Node: "lb1", Detail: "p99 = 1.6s"},
		{Time: start, Kind: storage.AlertFiring, Alert: "Degraded", Node: "lb2", Detail: "node_degraded = 1"},
		{Time: start.Add(5 * time.Minute), Kind: storage.AlertResolved, Alert: "Degraded", Node: "lb2"},
	} {
		if _, err := st.AppendEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	id := start.UTC().Format("20060102-150405") + "-lb2"
	code, stdout, stderr := vantage(t, "timeline", "--storage.path="+dir, "--timezone=UTC")
	if code != 0 || !strings.Contains(stdout, "#### Incident "+id+": node lb2") || strings.Contains(stdout, "lb1") || !strings.Contains(stdout, "1 event that never paged is left out") {
		t.Errorf("default: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = vantage(t, "timeline", "--storage.path="+dir, "--timezone=UTC", "--all")
	if code != 0 || !strings.Contains(stdout, "<summary>Not paged: 1 event (") || !strings.Contains(stdout, "home/direct/lb1") {
		t.Errorf("--all: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = vantage(t, "timeline", "--storage.path="+dir, "--timezone=UTC", "--incident="+id)
	if code != 0 || !strings.HasPrefix(stdout, "### Incident "+id+": node lb2\n") {
		t.Errorf("--incident: exit %d\n%s", code, stdout)
	}
	code, stdout, stderr = vantage(t, "timeline", "--storage.path="+dir, "--incident=nope", "--format=json")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `no incident "nope" in this range; incidents: `+id) {
		t.Errorf("unknown incident: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestTimelineAcceptsDemoStoragePath: `vantage demo --storage.path=DIR`
// keeps its database in DIR/data; `vantage timeline --storage.path=DIR`
// finds it there, and the DIR/data path works as well.
func TestTimelineAcceptsDemoStoragePath(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(filepath.Join(dir, demoDataDir), storage.Options{PruneInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	for _, e := range []storage.Event{
		{Time: start, Kind: storage.AlertFiring, Alert: "Degraded", Node: "lb2", Detail: "node_degraded = 1"},
		{Time: start.Add(5 * time.Minute), Kind: storage.AlertResolved, Alert: "Degraded", Node: "lb2"},
	} {
		if _, err := st.AppendEvent(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, demoDataDir)} {
		code, stdout, stderr := vantage(t, "timeline", "--storage.path="+p, "--timezone=UTC")
		if code != 0 || !strings.Contains(stdout, "node lb2") {
			t.Errorf("timeline --storage.path=%s: exit %d\n%s%s", p, code, stdout, stderr)
		}
	}
	// A directory with neither names the path it looked at.
	empty := t.TempDir()
	code, _, stderr := vantage(t, "timeline", "--storage.path="+empty)
	if code != 1 || !strings.Contains(stderr, "no database at "+filepath.Join(empty, storage.FileName)) {
		t.Errorf("empty dir: exit %d, stderr %q", code, stderr)
	}
}
