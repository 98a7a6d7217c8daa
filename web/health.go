package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// MeasurementStatus is the daemon's own measurement health (docs/api.md):
// how late its timers and runs start, and whether that is as large as the
// smallest difference the node detector acts on.
type MeasurementStatus struct {
	Degraded         bool    `json:"degraded"`
	LagSeconds       float64 `json:"lag_seconds"`
	ThresholdSeconds float64 `json:"threshold_seconds"`
}

// The node verdicts of NodeStatus.State.
const (
	NodeDegraded      = "degraded"        // worse than its siblings
	NodeOK            = "ok"              // compared, not worse
	NodeHeld          = "held"            // would be degraded, but the daemon's own lag explains it
	NodeNotEnoughData = "not_enough_data" // too few runs, or fewer than two siblings
)

// NodeStatus is the node detector's latest verdict on one node over the
// window of the rules that use it (docs/statistics.md). The figures are
// absent when State is not_enough_data.
type NodeStatus struct {
	Node    string         `json:"node"`
	Address string         `json:"node_address,omitempty"`
	Window  model.Duration `json:"window,omitempty"`
	State   string         `json:"state"`
	// SlowShare and SiblingSlowShare are the shares of the node's and its
	// siblings' runs that were slow or failed; Evidence is -log10 of the
	// test's p-value.
	SlowShare        *float64 `json:"slow_share,omitempty"`
	SiblingSlowShare *float64 `json:"sibling_slow_share,omitempty"`
	Evidence         *float64 `json:"evidence,omitempty"`
	P90              *float64 `json:"p90_seconds,omitempty"`
	SiblingP90       *float64 `json:"sibling_p90_seconds,omitempty"`
	// SlowRunsTake is the median of the node's slow runs (seconds): what a
	// customer waits when they hit the fault. With a tenth of the runs
	// slow, the node's p90 sits at the boundary and says little.
	SlowRunsTake *float64  `json:"slow_runs_seconds,omitempty"`
	Affected     []string  `json:"affected,omitempty"`
	Since        time.Time `json:"since,omitzero"`
}

// HealthSource is implemented by a StatusSource that knows the daemon's
// measurement health and the node detector's verdicts; without it the page
// and the API leave both out.
type HealthSource interface {
	Measurement(ctx context.Context) MeasurementStatus
	// Nodes lists the detector's verdicts, sorted by node; nil when no
	// rule uses the detector.
	Nodes(ctx context.Context) []NodeStatus
}

// measurementView is the status page's warning about the daemon's own
// numbers.
type measurementView struct {
	Lag, Threshold string
}

// nodeVerdictView is one row of the status page's node table.
type nodeVerdictView struct {
	Node, Address, State, StateText, Detail, Since, Targets string
}

var nodeStateText = map[string]string{
	NodeDegraded: "DEGRADED", NodeOK: "OK", NodeHeld: "HELD", NodeNotEnoughData: "not enough data",
}

func measurementOf(m MeasurementStatus) *measurementView {
	if !m.Degraded {
		return nil
	}
	return &measurementView{Lag: fmtSeconds(&m.LagSeconds), Threshold: fmtSeconds(&m.ThresholdSeconds)}
}

// nodeViews are the node table's rows: the detector's verdict with its
// evidence, and how the node's own targets fare (states by target key).
func (st *Status) nodeViews(nodes []NodeStatus, checks []CheckStatus, states map[string]string, now time.Time) []nodeVerdictView {
	type count struct{ total, up, degraded, down, failing int }
	counts := map[string]*count{}
	for _, c := range checks {
		if c.Node == "" {
			continue
		}
		n := counts[c.Node]
		if n == nil {
			n = &count{}
			counts[c.Node] = n
		}
		n.total++
		switch states[c.Target] {
		case "up":
			n.up++
		case "degraded":
			n.degraded++
		case "down":
			n.down++
		case "failing":
			n.failing++
		}
	}
	// A node that is the only one of every check and path it serves (an
	// API behind one address) has no siblings to be compared with: it is
	// no load-balancer node, and its row would only ever say so.
	siblings := map[string]bool{}
	perRow := map[[2]string]int{}
	for _, c := range checks {
		if c.Node != "" {
			perRow[[2]string{c.Check, c.Path}]++
		}
	}
	for _, c := range checks {
		if c.Node != "" && perRow[[2]string{c.Check, c.Path}] > 1 {
			siblings[c.Node] = true
		}
	}
	var out []nodeVerdictView
	for _, n := range nodes {
		if n.State == NodeNotEnoughData && !siblings[n.Node] && counts[n.Node] != nil {
			continue
		}
		v := nodeVerdictView{Node: n.Node, Address: n.Address, State: n.State, StateText: nodeStateText[n.State]}
		if n.Address == n.Node {
			v.Address = ""
		}
		if c := counts[n.Node]; c != nil {
			var parts []string
			for _, p := range []struct {
				n    int
				what string
			}{{c.up, "up"}, {c.degraded, "degraded"}, {c.failing, "failing"}, {c.down, "down"}, {c.total - c.up - c.degraded - c.failing - c.down, "no data"}} {
				if p.n > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
				}
			}
			v.Targets = strings.Join(parts, ", ")
		}
		switch n.State {
		case NodeNotEnoughData:
			v.Detail = "too few runs, or fewer than two siblings to compare with"
		default:
			if n.SlowShare != nil && n.SiblingSlowShare != nil {
				v.Detail = share(*n.SlowShare) + " of runs slow or failed, " + share(*n.SiblingSlowShare) + " on its siblings"
			}
			if n.P90 != nil && n.SiblingP90 != nil && n.State != NodeOK {
				v.Detail += fmt.Sprintf("; p90 %s vs %s", fmtSeconds(n.P90), fmtSeconds(n.SiblingP90))
			}
			if len(n.Affected) > 0 && n.State != NodeOK {
				var checks []string
				for _, a := range n.Affected {
					check, _, _ := strings.Cut(a, " via ")
					checks = appendNew(checks, check)
				}
				v.Detail += "; in " + listed(checks, 6)
			}
			if n.State == NodeHeld {
				v.Detail += "; not paged: the daemon's own lag is as large as the difference"
			}
		}
		if !n.Since.IsZero() {
			v.Since = ago(now.Sub(n.Since))
		}
		out = append(out, v)
	}
	return out
}
