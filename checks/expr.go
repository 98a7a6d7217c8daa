package checks

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
)

// measureList names the measures an alert's `when` may use.
const measureList = "success_ratio, failures, p50, p90, p99, node_slowdown, node_degraded, node_slow_share, node_evidence, domain_error_ratio, domain_p90, cert_days_left, measurement_lag"

// IsDurationMeasure reports whether a measure is a latency, whose value is
// written as a duration and stored in seconds.
func IsDurationMeasure(m string) bool {
	switch m {
	case "p50", "p90", "p99", "domain_p90", "measurement_lag":
		return true
	}
	return false
}

func isMeasure(m string) bool {
	switch m {
	case "success_ratio", "failures", "domain_error_ratio", "cert_days_left":
		return true
	}
	return IsNodeMeasure(m) || IsDurationMeasure(m)
}

// IsNodeMeasure reports whether a measure compares a load-balancer node
// with its siblings: node_slowdown (p90 ratio) and the detector's
// node_degraded (1 while degraded), node_slow_share (share of the node's
// runs that were slow or failed) and node_evidence (-log10 of the test's
// p-value). The detector's three are pooled over every check and path that
// share the node, so they are the same on each of its targets.
func IsNodeMeasure(m string) bool {
	switch m {
	case "node_slowdown", "node_degraded", "node_slow_share", "node_evidence":
		return true
	}
	return false
}

// IsDetectorMeasure reports whether a measure is one of the node
// detector's (every node measure but node_slowdown).
func IsDetectorMeasure(m string) bool { return IsNodeMeasure(m) && m != "node_slowdown" }

var whenRE = regexp.MustCompile(`^\s*([A-Za-z0-9_]+)\s*([<>=!]+)\s*(\S+)\s*$`)

// ParseExpr parses an alert condition `<measure> <op> <value>`, e.g.
// "p99 > 1.5s" or "success_ratio < 0.95".
func ParseExpr(s string) (Expr, error) {
	m := whenRE.FindStringSubmatch(s)
	if m == nil {
		return Expr{}, fmt.Errorf("invalid when %q (want <measure> <op> <value>, e.g. \"p99 > 1.5s\")", s)
	}
	measure, op, val := m[1], m[2], m[3]
	if !isMeasure(measure) {
		return Expr{}, fmt.Errorf("unknown measure %q in when (want one of %s)", measure, measureList)
	}
	switch op {
	case ">", ">=", "<", "<=":
	default:
		return Expr{}, fmt.Errorf("unknown operator %q in when (want >, >=, < or <=)", op)
	}
	v, err := parseExprValue(measure, val)
	if err != nil {
		return Expr{}, err
	}
	return Expr{Measure: measure, Op: op, Value: v}, nil
}

func parseExprValue(measure, s string) (float64, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		// NaN compares false with everything and an infinite threshold
		// is no threshold: either would make a rule that never fires.
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("invalid value %q in when (want a finite number)", s)
		}
		return f, nil
	}
	if IsDurationMeasure(measure) {
		if d, err := time.ParseDuration(s); err == nil {
			return d.Seconds(), nil
		}
		if d, err := model.ParseDuration(s); err == nil {
			return time.Duration(d).Seconds(), nil
		}
		return 0, fmt.Errorf("invalid value %q in when (want a duration like 1.5s or 800ms, or seconds)", s)
	}
	return 0, fmt.Errorf("invalid value %q in when (want a number)", s)
}

// String renders the expression back in `when` syntax, as text that
// ParseExpr reads as the same expression.
func (e Expr) String() string {
	v := strconv.FormatFloat(e.Value, 'g', -1, 64)
	// Latencies read better as 1.5s, but a duration has only nanosecond
	// precision and no exponent (1e-10s does not parse): those stay plain
	// seconds.
	if IsDurationMeasure(e.Measure) {
		if d, err := time.ParseDuration(v + "s"); err == nil && d.Seconds() == e.Value {
			v += "s"
		}
	}
	return e.Measure + " " + e.Op + " " + v
}

// Holds reports whether the condition is true for measured value v.
func (e Expr) Holds(v float64) bool {
	switch e.Op {
	case ">":
		return v > e.Value
	case ">=":
		return v >= e.Value
	case "<":
		return v < e.Value
	case "<=":
		return v <= e.Value
	}
	return false
}

// Matches reports whether the alert applies to the named check: its checks
// names/globs match, or it lists none (all checks).
func (a *Alert) Matches(check string) bool {
	if len(a.Checks) == 0 {
		return true
	}
	for _, pat := range a.Checks {
		if ok, _ := path.Match(pat, check); ok {
			return true
		}
	}
	return false
}
