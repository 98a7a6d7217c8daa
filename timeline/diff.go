package timeline

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/vantage-monitoring/vantage/checks"
)

// ConfigDiff is what a reload changed, for the config_reload event's data.
type ConfigDiff struct {
	Added   []string `json:"checks_added"`
	Removed []string `json:"checks_removed"`
	Changed []string `json:"checks_changed"`
}

// DiffConfigs compares the checks of two configs by name and definition.
func DiffConfigs(old, cur *checks.Config) ConfigDiff {
	d := ConfigDiff{Added: []string{}, Removed: []string{}, Changed: []string{}}
	before := map[string]string{}
	if old != nil {
		for i := range old.Checks {
			before[old.Checks[i].Name] = old.Checks[i].Fingerprint()
		}
	}
	seen := map[string]bool{}
	if cur != nil {
		for i := range cur.Checks {
			c := &cur.Checks[i]
			seen[c.Name] = true
			fp, ok := before[c.Name]
			switch {
			case !ok:
				d.Added = append(d.Added, c.Name)
			case fp != c.Fingerprint():
				d.Changed = append(d.Changed, c.Name)
			}
		}
	}
	for name := range before {
		if !seen[name] {
			d.Removed = append(d.Removed, name)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Changed)
	return d
}

// Summary reads like "checks: 1 added (static-cdn), 0 removed, 2 changed
// (home, api)"; at most five names are listed per group.
func (d ConfigDiff) Summary() string {
	group := func(n []string, verb string) string {
		s := fmt.Sprintf("%d %s", len(n), verb)
		if len(n) == 0 {
			return s
		}
		shown := n
		if len(shown) > 5 {
			shown = shown[:5]
		}
		s += " (" + strings.Join(shown, ", ")
		if len(n) > 5 {
			s += fmt.Sprintf(", +%d", len(n)-5)
		}
		return s + ")"
	}
	return "checks: " + group(d.Added, "added") + ", " + group(d.Removed, "removed") + ", " + group(d.Changed, "changed")
}

// JSON is the diff as event data.
func (d ConfigDiff) JSON() json.RawMessage {
	b, _ := json.Marshal(d)
	return b
}
