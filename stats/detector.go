package stats

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
)

// week is the period node_detection.false_pages_per_week is counted over.
const week = 7 * 24 * time.Hour

// MaxFireAlpha caps FireAlpha: no setting of false_pages_per_week makes
// becoming degraded easier than a 1 % test.
const MaxFireAlpha = 0.01

// Staying degraded. Once a node is known bad, the question is whether it
// is still slow, and a lull in a partial fault must not read as recovery,
// while the end of a fault should resolve the page soon, not once its slow
// runs have aged out of the window. So a degraded node stays degraded
// until it has had no slow run for longer than chance allows at its own
// rate of slow runs: with r slow runs a second, a silence of ln(1/q)/r
// happens with probability q. q is 1/1000 (a partial fault has a few
// dozen silences between slow runs, so about one in forty faults would end
// early at 1/100). The silence allowed is at least minSilence, and at most
// what still resolves the page within resolveWithin of the fault's end: the
// last slow run is known only to the newest sub-windows (recentSubWindows)
// and the detector runs every few seconds, so those come off the budget.
// A node slow on every run is cleared about half a minute after the fault
// ends; one slow on a tenth of its runs, after up to resolveWithin.
const (
	silenceQuantile = 1000
	minSilence      = 10 * time.Second
	resolveWithin   = 2 * time.Minute
	evalSlack       = 10 * time.Second
)

// allowedSilence is how long a degraded node may go without a slow run.
func allowedSilence(bad int, window time.Duration) time.Duration {
	limit := min(window, resolveWithin-recentSubWindows*window/subWindows-evalSlack)
	if bad <= 0 || window <= 0 {
		return minSilence
	}
	rate := float64(bad) / window.Seconds()
	d := time.Duration(math.Log(silenceQuantile) / rate * float64(time.Second))
	return max(min(d, limit), minSilence)
}

// lookFactor accounts for looking at a sliding window many times: the
// detector is evaluated every few seconds, and the largest of many
// overlapping looks is more extreme than one look. Four is what the
// simulation in calib_test.go needs to keep a healthy, noisy shop within
// the configured false pages per week.
const lookFactor = 4

// FireAlpha is the significance level for calling a node degraded over
// window: the false pages allowed per week spread over the independent
// windows in a week. Evaluations more frequent than the window look at
// overlapping data, so the window, not the evaluation interval, is the unit.
func FireAlpha(nd checks.NodeDetection, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return min(nd.FalsePagesPerWeek*float64(window)/float64(week)/lookFactor, MaxFireAlpha)
}

// NodeVerdict is the detector's decision on one node over one window.
type NodeVerdict struct {
	NodeEvidence
	Degraded bool
	// Since is when the node became degraded.
	Since time.Time
	// Held is set when the evidence was enough to call the node degraded
	// but the daemon's own lag was as large as the excess of the slow runs
	// counted: its own noise could explain them.
	Held bool
	// LastSlowAt is when a slow run of the degraded node was last seen in
	// the newest part of the window.
	LastSlowAt time.Time
}

// NodeDetector turns NodeEvidence into degraded/not degraded per node and
// window, with hysteresis: FireAlpha to become degraded, MaxFireAlpha to stay.
// Safe for concurrent use.
type NodeDetector struct {
	mu    sync.Mutex
	state map[time.Duration]map[string]*NodeVerdict
	at    map[time.Duration]time.Time
}

// NewNodeDetector returns a detector with no node degraded.
func NewNodeDetector() *NodeDetector {
	return &NodeDetector{state: map[time.Duration]map[string]*NodeVerdict{}, at: map[time.Duration]time.Time{}}
}

// Update adopts the evidence of one evaluation over window at now and
// returns the verdicts, keyed by node. lag is the daemon's own measurement
// lag when its measurements are degraded (else 0): evidence whose slow runs
// are slow by no more than lag cannot make a node degraded (the daemon's
// noise explains it), but it never ends a degraded state early. Nodes
// missing from ev (gone from DNS, too few runs) lose their state.
func (d *NodeDetector) Update(now time.Time, window time.Duration, ev map[string]NodeEvidence, nd checks.NodeDetection, lag time.Duration) map[string]NodeVerdict {
	fire := FireAlpha(nd, window)
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.state[window]
	next := make(map[string]*NodeVerdict, len(ev))
	out := make(map[string]NodeVerdict, len(ev))
	for node, e := range ev {
		v := &NodeVerdict{NodeEvidence: e}
		was := prev[node]
		switch {
		case was != nil && was.Degraded:
			last := was.LastSlowAt
			if e.RecentBad > 0 || now.Before(last) {
				// A clock stepped back counts the silence from now, so
				// it cannot hold a node degraded until it catches up.
				last = now
			}
			if float64(e.Bad) > e.Expected && now.Sub(last) < allowedSilence(e.Bad, window) {
				v.Degraded, v.Since, v.LastSlowAt = true, was.Since, last
			}
		case e.Significant(fire, nd.MinSlowRuns):
			if lag > 0 && lag >= e.Excess {
				v.Held = true
			} else {
				v.Degraded, v.Since, v.LastSlowAt = true, now, now
			}
		}
		next[node] = v
		out[node] = *v
	}
	d.state[window] = next
	d.at[window] = now
	return out
}

// Verdicts returns the latest verdicts of every window evaluated since
// now-maxAge, keyed by window and node.
func (d *NodeDetector) Verdicts(now time.Time, maxAge time.Duration) map[time.Duration][]NodeVerdict {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[time.Duration][]NodeVerdict{}
	for w, m := range d.state {
		if now.Sub(d.at[w]) > maxAge {
			continue
		}
		list := make([]NodeVerdict, 0, len(m))
		for _, v := range m {
			list = append(list, *v)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Node < list[j].Node })
		out[w] = list
	}
	return out
}
