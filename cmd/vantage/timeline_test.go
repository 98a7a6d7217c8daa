package main

import (
	"strings"
	"testing"

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
