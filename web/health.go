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
	SlowShare        *float64  `json:"slow_share,omitempty"`
	SiblingSlowShare *float64  `json:"sibling_slow_share,omitempty"`
	Evidence         *float64  `json:"evidence,omitempty"`
	P90              *float64  `json:"p90_seconds,omitempty"`
	SiblingP90       *float64  `json:"sibling_p90_seconds,omitempty"`
	Affected         []string  `json:"affected,omitempty"`
	Since            time.Time `json:"since,omitzero"`
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
	Node, Address, State, StateText, Detail, Since string
}

var nodeStateText = map[string]string{
	NodeDegraded: "DEGRADED", NodeOK: "OK", NodeHeld: "HELD", NodeNotEnoughData: "not enough data",
}

func (st *Status) healthViews(ctx context.Context, now time.Time) (*measurementView, []nodeVerdictView) {
	hs, ok := st.o.Source.(HealthSource)
	if !ok {
		return nil, nil
	}
	var mv *measurementView
	if m := hs.Measurement(ctx); m.Degraded {
		mv = &measurementView{Lag: fmtSeconds(&m.LagSeconds), Threshold: fmtSeconds(&m.ThresholdSeconds)}
	}
	var out []nodeVerdictView
	for _, n := range hs.Nodes(ctx) {
		v := nodeVerdictView{Node: n.Node, Address: n.Address, State: n.State, StateText: nodeStateText[n.State]}
		if n.Address == n.Node {
			v.Address = ""
		}
		switch n.State {
		case NodeNotEnoughData:
			v.Detail = "too few runs, or fewer than two siblings to compare with"
		default:
			if n.SlowShare != nil && n.SiblingSlowShare != nil {
				v.Detail = fmt.Sprintf("%.1f%% of runs slow or failed, %.1f%% on its siblings", 100**n.SlowShare, 100**n.SiblingSlowShare)
			}
			if n.P90 != nil && n.SiblingP90 != nil && n.State != NodeOK {
				v.Detail += fmt.Sprintf("; p90 %s vs %s", fmtSeconds(n.P90), fmtSeconds(n.SiblingP90))
			}
			if len(n.Affected) > 0 && n.State != NodeOK {
				v.Detail += "; in " + strings.Join(n.Affected, ", ")
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
	return mv, out
}
