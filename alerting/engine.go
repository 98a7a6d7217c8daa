// Package alerting evaluates vantage's own alert rules (docs/alerting.md) from the
// in-daemon statistics, with Prometheus' state semantics (inactive →
// pending → firing → resolved), `for`, `keep_firing_for`, and flap memory:
// how often an instance fired within the flap window travels with every
// notification so a recurring problem is never mistaken for a new one.
//
// The engine is pure state: it is told the time and the measures, and it
// returns transitions. Persistence, the timeline and delivery are the
// caller's (see Restore and Instances).
package alerting

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/durfmt"
)

// State of an alert instance.
type State string

const (
	Inactive State = "inactive"
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Series is one thing a rule can be evaluated on: a target, or a browser
// domain of a target.
type Series struct {
	// Labels are the target's labels: check, type, path, node, location
	// and the check's own labels; plus domain for domain series.
	Labels map[string]string
	Target string // target key
	Domain string // non-empty for a browser domain series
	// Data are values annotation templates may use that are not labels,
	// so grouping and notifications stay as they are: node_address.
	Data map[string]string
}

// Measures answers a rule's measure for a series over a window.
type Measures interface {
	Measure(measure string, s Series, window time.Duration) (float64, bool)
}

// Explainer is implemented by Measures that know when a value could be the
// daemon's own noise (its measurements are degraded). A condition that holds
// only by such a value does not count: its group keeps its instance's state,
// so nothing new pages on it, and nothing resolves either.
type Explainer interface {
	Explained(e checks.Expr, value float64) bool
}

// Detailer is implemented by Measures that can say more about a value than
// the number: the node detector's evidence, say. The details of the worst
// series of a group become annotations (and template data) of its instance;
// for a node alert, details "affected" (the checks and paths that show the
// condition) and "p90"/"sibling_p90" take the place of what the engine
// would work out from the series.
type Detailer interface {
	Details(measure string, s Series, window time.Duration) map[string]string
}

// Instance is one alert instance: a rule and one group of its `by` labels.
type Instance struct {
	Key         string            `json:"key"`
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       State             `json:"state"`
	Value       float64           `json:"value"`
	// ActiveAt is when the condition started to hold (pending since).
	ActiveAt time.Time `json:"active_at"`
	// FiredAt is when this episode started firing.
	FiredAt time.Time `json:"fired_at,omitzero"`
	// LastTrueAt is the last evaluation at which the condition held.
	LastTrueAt time.Time `json:"last_true_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Fired lists when this instance started firing, within the flap window.
	Fired []time.Time `json:"fired"`
	// Measure is the rule's measure, for rendering Value (see FormatValue).
	Measure string   `json:"measure"`
	Notify  []string `json:"notify"`
	// Details are what the measure said about the value when the condition
	// last held (see Detailer); they become annotations.
	Details map[string]string `json:"details,omitempty"`
	// InhibitedBy is the key of the node alert this instance is folded
	// into (see fold): a node alert that is firing, or pending and about
	// to decide, on the same node and location. The built-in notifiers
	// send the node alert instead of this one.
	InhibitedBy string `json:"inhibited_by,omitempty"`
	// For a node alert (a node_* measure grouped by node): NodeAddress is
	// the node's address when the series name the node otherwise; Affected
	// lists the checks and paths that show the condition or whose alerts
	// are folded into it ("shop-home via direct"); Folded lists those
	// alerts ("ShopSlowForCustomers shop-home via direct: p99 = 2.1s").
	NodeAddress string   `json:"node_address,omitempty"`
	Affected    []string `json:"affected,omitempty"`
	Folded      []string `json:"folded,omitempty"`
	// shows is the last evaluation's check×path series that hold the
	// condition of a node alert (part of Affected); p90 is the p90 of the
	// series that gave its value (0: unknown), for the page text.
	shows []string
	p90   float64
	// data are the group's Series.Data, for annotation templates.
	data map[string]string
}

// FiredCount is how often the instance fired within the flap window.
func (i *Instance) FiredCount() int { return len(i.Fired) }

// Flapping reports whether the instance fired twice or more in the window.
func (i *Instance) Flapping() bool { return len(i.Fired) >= 2 }

// Transition is a state change of an instance, with the instance as it is
// after the change.
type Transition struct {
	From, To State
	Instance Instance
}

// Options configure an Engine.
type Options struct {
	Logger zerolog.Logger
	// ResolvedRetention is how long a resolved instance is kept (for
	// re-sending its resolution); default 15m as in Prometheus.
	ResolvedRetention time.Duration
}

// Engine holds rules and instance state. Safe for concurrent use.
type Engine struct {
	log               zerolog.Logger
	resolvedRetention time.Duration

	mu         sync.Mutex
	rules      []*rule
	location   string
	flapWindow time.Duration
	instances  map[string]*Instance
	// history keeps firing times per instance key beyond the instance's
	// own life, so flap memory survives a resolve.
	history map[string][]time.Time
	// orphans are rules a reload removed while instances of theirs were
	// firing: the next evaluation resolves those (a receiver must not be
	// left with an alert that never ends), then the rule goes.
	orphans map[string]*rule
}

type rule struct {
	cfg         checks.Alert
	annotations map[string]*template.Template
	domain      bool     // measure is per browser domain
	keyBy       []string // cfg.By sorted and unique: the instance key's order
	// byNode: the instances name a node; node: a node alert, a node_*
	// measure grouped by node, into which the other alerts on that node
	// fold.
	byNode, node bool
}

// Window is rule name's window (0 for an unknown rule).
func (e *Engine) Window(name string) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.rules {
		if r.cfg.Name == name {
			return time.Duration(r.cfg.Window)
		}
	}
	return 0
}

// IsNodeMeasure reports whether measure compares a node with its siblings:
// the config's own list (checks.IsNodeMeasure), so the two cannot drift.
func IsNodeMeasure(measure string) bool { return checks.IsNodeMeasure(measure) }

// Place names a check and path as people say it: "shop-home via direct".
func Place(labels map[string]string) string {
	p := labels["check"]
	if v := labels["path"]; v != "" {
		p += " via " + v
	}
	return p
}

// appendKey appends s's instance key, rule|k=v|… over its sorted `by`
// labels, without building a label map: the hot path of Eval.
func (r *rule) appendKey(buf []byte, s *Series) []byte {
	buf = append(buf, r.cfg.Name...)
	for _, b := range r.keyBy {
		buf = append(buf, '|')
		buf = append(buf, b...)
		buf = append(buf, '=')
		if b == "domain" {
			buf = append(buf, s.Domain...)
		} else {
			buf = append(buf, s.Labels[b]...)
		}
	}
	return buf
}

func (r *rule) groupLabels(s *Series) map[string]string {
	gl := make(map[string]string, len(r.keyBy))
	for _, b := range r.keyBy {
		if b == "domain" {
			gl[b] = s.Domain
		} else {
			gl[b] = s.Labels[b]
		}
	}
	return gl
}

// New returns an engine without rules; Configure gives it some.
func New(o Options) *Engine {
	if o.ResolvedRetention <= 0 {
		o.ResolvedRetention = 15 * time.Minute
	}
	return &Engine{log: o.Logger, resolvedRetention: o.ResolvedRetention,
		instances: map[string]*Instance{}, history: map[string][]time.Time{}, orphans: map[string]*rule{},
		flapWindow: time.Hour}
}

// Configure adopts cfg's rules. Instances of rules that still exist (by
// name) keep their state, timers and flap history, whatever else of the
// rule changed; firing instances of removed rules resolve at the next
// evaluation, the others are dropped.
func (e *Engine) Configure(cfg *checks.Config) error {
	var rules []*rule
	for _, a := range cfg.Alerts {
		r := &rule{cfg: a, annotations: map[string]*template.Template{},
			domain: a.Expr.Measure == "domain_error_ratio" || a.Expr.Measure == "domain_p90"}
		r.keyBy = append([]string(nil), a.By...)
		sort.Strings(r.keyBy)
		r.keyBy = slices.Compact(r.keyBy)
		r.byNode = slices.Contains(r.keyBy, "node")
		r.node = r.byNode && IsNodeMeasure(a.Expr.Measure)
		for k, text := range a.Annotations {
			t, err := template.New(a.Name + "/" + k).Funcs(checks.AnnotationFuncs()).Option("missingkey=zero").Parse(text)
			if err != nil {
				return fmt.Errorf("alert %q annotation %q: %w", a.Name, k, err)
			}
			r.annotations[k] = t
		}
		rules = append(rules, r)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.location = cfg.Global.Location
	if cfg.Global.FlapWindow > 0 {
		e.flapWindow = time.Duration(cfg.Global.FlapWindow)
	}
	names := map[string]bool{}
	for _, r := range rules {
		names[r.cfg.Name] = true
		delete(e.orphans, r.cfg.Name)
	}
	old := map[string]*rule{}
	for _, r := range e.rules {
		old[r.cfg.Name] = r
	}
	for k, inst := range e.instances {
		if names[inst.Rule] {
			continue
		}
		if r := old[inst.Rule]; r != nil && inst.State == Firing {
			e.orphans[inst.Rule] = r
			continue
		}
		if e.orphans[inst.Rule] == nil || inst.State != Firing {
			delete(e.instances, k)
		}
	}
	e.rules = rules
	return nil
}

// Windows lists every window the rules use, for the statistics.
func (e *Engine) Windows() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []time.Duration
	for _, r := range e.rules {
		out = append(out, time.Duration(r.cfg.Window))
	}
	return out
}

func holds(op string, v, threshold float64) bool {
	switch op {
	case ">":
		return v > threshold
	case ">=":
		return v >= threshold
	case "<":
		return v < threshold
	case "<=":
		return v <= threshold
	}
	return false
}

// worse reports whether v is further on the alerting side than w.
func worse(op string, v, w float64) bool {
	if op == ">" || op == ">=" {
		return v > w
	}
	return v < w
}

type group struct {
	labels map[string]string
	data   map[string]string
	value  float64
	holds  bool
	seen   bool
	addr   string          // node_address of the group's series
	shows  map[string]bool // node rules: places whose series hold
	worst  *Series         // the series that gave value
	p90    float64         // node rules: worst's p90 (0: unknown)
	// details are the Detailer's for worst, for holding groups.
	details map[string]string
	// held: the condition held only by values the daemon's own noise
	// explains (see Explainer).
	held bool
	// nodata: the group's series exist but none has data in the window
	// (right after a restart, before the first runs).
	nodata bool
}

// addData merges a series' Data into the group's: where its series differ
// (node_address of a node grouped across checks), the values are listed.
func (g *group) addData(d map[string]string) {
	for k, v := range d {
		if g.data == nil {
			g.data = map[string]string{}
		}
		old, seen := g.data[k]
		switch {
		case !seen || old == "":
			g.data[k] = v
		case v != "" && !slices.Contains(strings.Split(old, ", "), v):
			vals := append(strings.Split(old, ", "), v)
			slices.Sort(vals)
			g.data[k] = strings.Join(vals, ", ")
		}
	}
}

// Eval evaluates every rule at now and returns the transitions, in a
// stable order (by rule, then instance key).
func (e *Engine) Eval(now time.Time, series []Series, m Measures) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var changed []change
	var buf []byte
	explainer, _ := m.(Explainer)
	detailer, _ := m.(Detailer)
	for _, r := range e.rules {
		groups := map[string]*group{}
		window := time.Duration(r.cfg.Window)
		for i := range series {
			s := &series[i]
			if (s.Domain != "") != r.domain || !r.cfg.Matches(s.Labels["check"]) {
				continue
			}
			v, ok := m.Measure(r.cfg.Expr.Measure, *s, window)
			if !ok || math.IsNaN(v) {
				// No data in the window yet: a live instance keeps its
				// state. After a restart the statistics start empty, and
				// an evaluation before the first runs would otherwise
				// resolve a restored firing alert and page it again.
				buf = r.appendKey(buf[:0], s)
				if _, live := e.instances[string(buf)]; live && groups[string(buf)] == nil {
					groups[string(buf)] = &group{labels: r.groupLabels(s), nodata: true}
				}
				continue
			}
			h := holds(r.cfg.Expr.Op, v, r.cfg.Expr.Value)
			held := h && explainer != nil && explainer.Explained(r.cfg.Expr, v)
			if held {
				h = false
			}
			buf = r.appendKey(buf[:0], s)
			g := groups[string(buf)]
			if g == nil {
				// A group matters only when it holds or has an instance to
				// update; most series are healthy, and skipping them keeps a
				// cycle over 10k targets cheap. (A healthy series cannot be
				// "worse" than a holding one of the same group.)
				if _, live := e.instances[string(buf)]; !h && !live && !held {
					continue
				}
				g = &group{labels: r.groupLabels(s), value: v}
				groups[string(buf)] = g
			}
			g.addData(s.Data)
			if !g.seen || worse(r.cfg.Expr.Op, v, g.value) {
				g.value = v
				g.worst = s
			}
			g.seen = true
			g.holds = g.holds || h
			g.held = g.held || held
			if r.byNode && g.addr == "" {
				g.addr = s.Labels["node_address"]
			}
			if r.node && h {
				if g.shows == nil {
					g.shows = map[string]bool{}
				}
				g.shows[Place(s.Labels)] = true
			}
		}
		if detailer != nil {
			for _, g := range groups {
				if g.holds && g.worst != nil {
					g.details = detailer.Details(r.cfg.Expr.Measure, *g.worst, window)
				}
			}
		}
		if r.node {
			// The p90 behind a node alert's value, for its page ("p90 912ms
			// vs 104ms on its siblings"): looked up for holding groups only.
			for _, g := range groups {
				if g.holds && g.worst != nil && g.details["p90"] == "" {
					if v, ok := m.Measure("p90", *g.worst, window); ok && !math.IsNaN(v) {
						g.p90 = v
					}
				}
			}
		}
		// Existing instances whose group is gone or no longer holds.
		var keys []string
		for k, inst := range e.instances {
			if inst.Rule == r.cfg.Name {
				keys = append(keys, k)
			}
		}
		for k, g := range groups {
			if g.holds {
				if _, ok := e.instances[k]; !ok {
					keys = append(keys, k)
				}
			}
		}
		sort.Strings(keys)
		seenKey := map[string]bool{}
		for _, k := range keys {
			if seenKey[k] {
				continue
			}
			seenKey[k] = true
			if tr, ok := e.step(now, r, k, groups[k]); ok {
				changed = append(changed, tr)
			}
		}
	}
	changed = append(changed, e.resolveOrphans(now)...)
	e.fold()
	// Transitions carry the instance as folding left it, so a notification
	// knows whether it is folded and a node alert lists what it covers.
	out := make([]Transition, 0, len(changed))
	for _, c := range changed {
		out = append(out, Transition{From: c.from, To: c.inst.State, Instance: cloneInstance(c.inst)})
	}
	e.gc(now)
	return out
}

// resolveOrphans resolves the firing instances of removed rules.
func (e *Engine) resolveOrphans(now time.Time) []change {
	var out []change
	for name, r := range e.orphans {
		var keys []string
		for k, inst := range e.instances {
			if inst.Rule == name && inst.State == Firing {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			inst := e.instances[k]
			inst.State, inst.ResolvedAt = Resolved, now
			e.pruneHistory(now, inst)
			inst.Annotations = e.annotations(r, inst)
			out = append(out, change{from: Firing, inst: inst})
		}
		delete(e.orphans, name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].inst.Key < out[j].inst.Key })
	return out
}

// change is a transition before folding: its instance is cloned after.
type change struct {
	from State
	inst *Instance
}

// step advances one instance by one evaluation.
func (e *Engine) step(now time.Time, r *rule, key string, g *group) (change, bool) {
	inst := e.instances[key]
	cond := g != nil && g.holds
	if g != nil && !g.seen && g.nodata {
		return change{}, false
	}
	if g != nil && !g.holds && g.held {
		return change{}, false // neither new nor resolved on noise
	}
	if inst == nil {
		if !cond {
			return change{}, false
		}
		inst = &Instance{Key: key, Rule: r.cfg.Name, State: Inactive, Notify: r.cfg.Notify, Measure: r.cfg.Expr.Measure}
		e.instances[key] = inst
	}
	// A reload may have changed the rule (threshold, notifiers, measure)
	// while keeping its name: the instance keeps its state and timers and
	// follows the rule's current definition.
	inst.Notify, inst.Measure = r.cfg.Notify, r.cfg.Expr.Measure
	if g != nil && g.seen {
		inst.Value = g.value
		inst.Labels = e.labels(r, g.labels)
		if g.holds {
			inst.Details = g.details
		}
		inst.data = g.data
		if g.addr == "" {
			g.addr = g.data["node_address"]
		}
		if g.addr != "" && g.addr != g.labels["node"] {
			inst.NodeAddress = g.addr
		}
	}
	if !r.node {
		inst.shows = nil
	} else if cond {
		// While it keeps firing without holding (keep_firing_for), the
		// places that last showed it stay.
		inst.p90 = g.p90
		inst.shows = inst.shows[:0]
		if a := g.details["affected"]; a != "" {
			// The measure knows better than "every series holds", which
			// is all a value pooled over the node's checks can say.
			inst.shows = append(inst.shows, strings.Split(a, ", ")...)
		} else {
			for p := range g.shows {
				inst.shows = append(inst.shows, p)
			}
		}
		sort.Strings(inst.shows)
	}
	from := inst.State
	switch {
	case cond && (inst.State == Inactive || inst.State == Resolved):
		inst.State, inst.ActiveAt, inst.LastTrueAt = Pending, now, now
		inst.FiredAt, inst.ResolvedAt = time.Time{}, time.Time{}
		if r.cfg.For <= 0 {
			e.fire(now, inst)
		}
	case cond && inst.State == Pending:
		inst.LastTrueAt = now
		if now.Sub(inst.ActiveAt) >= time.Duration(r.cfg.For) {
			e.fire(now, inst)
		}
	case cond && inst.State == Firing:
		inst.LastTrueAt = now
	case !cond && inst.State == Pending:
		inst.State = Inactive
	case !cond && inst.State == Firing:
		if now.Sub(inst.LastTrueAt) >= time.Duration(r.cfg.KeepFiringFor) {
			inst.State, inst.ResolvedAt = Resolved, now
		}
	}
	e.pruneHistory(now, inst)
	inst.Annotations = e.annotations(r, inst)
	if inst.State == Inactive {
		delete(e.instances, key)
	}
	if from == inst.State {
		return change{}, false
	}
	return change{from: from, inst: inst}, true
}

// fold marks every pending or firing alert on a node that a node alert
// covers (same node and location; a firing node alert before a pending
// one) as folded into it, and gives each node alert the list of what it
// covers. A pending node alert folds too: it decides within its `for`,
// and holding the per-check pages until then is what makes one bad node
// one page rather than a race of several.
func (e *Engine) fold() {
	byName := make(map[string]*rule, len(e.rules))
	for _, r := range e.rules {
		byName[r.cfg.Name] = r
	}
	type place struct{ node, location string }
	cover := map[place]*Instance{}
	better := func(a, b *Instance) bool { // a covers rather than b
		if (a.State == Firing) != (b.State == Firing) {
			return a.State == Firing
		}
		return a.Key < b.Key
	}
	var nodes, others []*Instance
	for _, inst := range e.instances {
		r := byName[inst.Rule]
		live := inst.State == Firing || inst.State == Pending
		switch {
		case r != nil && r.node:
			inst.Folded = nil
			nodes = append(nodes, inst)
			if p := (place{inst.Labels["node"], inst.Labels["location"]}); live && p.node != "" {
				if c := cover[p]; c == nil || better(inst, c) {
					cover[p] = inst
				}
			}
		default:
			inst.InhibitedBy = ""
			if live && inst.Labels["node"] != "" {
				others = append(others, inst)
			}
		}
	}
	sort.Slice(others, func(i, j int) bool { return others[i].Key < others[j].Key })
	affected := map[*Instance]map[string]bool{}
	for _, inst := range others {
		c := cover[place{inst.Labels["node"], inst.Labels["location"]}]
		if c == nil {
			continue
		}
		inst.InhibitedBy = c.Key
		line := inst.Rule + " " + Place(inst.Labels)
		if d := inst.Labels["domain"]; d != "" {
			line += " domain " + d
		}
		c.Folded = append(c.Folded, line+": "+conditionText(inst))
		if affected[c] == nil {
			affected[c] = map[string]bool{}
		}
		affected[c][Place(inst.Labels)] = true
	}
	for _, inst := range nodes {
		set := affected[inst]
		if set == nil {
			set = map[string]bool{}
		}
		for _, p := range inst.shows {
			set[p] = true
		}
		inst.Affected = inst.Affected[:0]
		for p := range set {
			if p != "" {
				inst.Affected = append(inst.Affected, p)
			}
		}
		sort.Strings(inst.Affected)
		if r := byName[inst.Rule]; r != nil {
			inst.Annotations = e.annotations(r, inst)
		}
	}
}

func conditionText(inst *Instance) string {
	return fmt.Sprintf("%s = %s", inst.Measure, FormatValue(inst.Measure, inst.Value))
}

func (e *Engine) fire(now time.Time, inst *Instance) {
	inst.State, inst.FiredAt = Firing, now
	e.history[inst.Key] = append(e.history[inst.Key], now)
}

func (e *Engine) pruneHistory(now time.Time, inst *Instance) {
	h := e.history[inst.Key]
	cut := 0
	for cut < len(h) && now.Sub(h[cut]) > e.flapWindow {
		cut++
	}
	h = h[cut:]
	if len(h) == 0 {
		delete(e.history, inst.Key)
	} else {
		e.history[inst.Key] = h
	}
	inst.Fired = append([]time.Time(nil), h...)
}

// gc drops resolved instances after the retention and stale history.
func (e *Engine) gc(now time.Time) {
	for k, inst := range e.instances {
		if inst.State == Resolved && now.Sub(inst.ResolvedAt) > e.resolvedRetention {
			delete(e.instances, k)
		}
	}
	for k, h := range e.history {
		if len(h) > 0 && now.Sub(h[len(h)-1]) > e.flapWindow {
			if _, live := e.instances[k]; !live {
				delete(e.history, k)
			}
		}
	}
}

// labels are alertname, the `by` labels, location, severity and the rule's
// own labels. They never include flap state, so Alertmanager's grouping
// stays stable.
func (e *Engine) labels(r *rule, by map[string]string) map[string]string {
	l := map[string]string{"alertname": r.cfg.Name}
	for k, v := range r.cfg.Labels {
		l[k] = v
	}
	for k, v := range by {
		l[k] = v
	}
	if e.location != "" {
		l["location"] = e.location
	}
	if r.cfg.Severity != "" {
		l["severity"] = r.cfg.Severity
	}
	return l
}

// FormatValue renders a measure's value for people: durations as 1.52s,
// ratios to three decimals, counts as integers.
func FormatValue(measure string, v float64) string {
	switch {
	case checks.IsDurationMeasure(measure):
		return time.Duration(v * float64(time.Second)).Round(time.Millisecond).String()
	case measure == "failures" || measure == "cert_days_left":
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	default:
		return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
	}
}

// annotations renders the rule's templates and adds the flap memory:
// fired_count, first_fired_at, flapping, and for a resolved instance a
// resolution that says how long it fired and how often it came back.
func (e *Engine) annotations(r *rule, inst *Instance) map[string]string {
	data := map[string]any{}
	for k, v := range inst.data {
		data[k] = v
	}
	for k, v := range inst.Labels {
		data[k] = v
	}
	data["value"] = FormatValue(r.cfg.Expr.Measure, inst.Value)
	data["raw_value"] = inst.Value
	data["threshold"] = FormatValue(r.cfg.Expr.Measure, r.cfg.Expr.Value)
	data["measure"] = r.cfg.Expr.Measure
	for k, v := range inst.Details {
		data[k] = v
	}
	if !inst.ActiveAt.IsZero() {
		data["active_since"] = inst.ActiveAt.UTC().Format(time.RFC3339)
	}
	nodeP90, siblingsP90 := nodeFigures(r, inst)
	if p := inst.Details["p90"]; p != "" {
		nodeP90, siblingsP90 = p, inst.Details["sibling_p90"]
	}
	if r.node {
		data["node_address"] = inst.NodeAddress
		data["affected"] = strings.Join(inst.Affected, ", ")
		data["folded"] = strings.Join(inst.Folded, "; ")
		data["node_p90"], data["siblings_p90"] = nodeP90, siblingsP90
	}
	out := map[string]string{}
	for k, v := range inst.Details {
		out[k] = v
	}
	for k, t := range r.annotations {
		var b strings.Builder
		if err := t.Execute(capWriter{&b}, data); err != nil {
			out[k] = "template error: " + err.Error()
			e.log.Warn().Str("alert", r.cfg.Name).Str("annotation", k).Err(err).Msg("annotation template failed")
			continue
		}
		out[k] = b.String()
	}
	n := len(inst.Fired)
	out["fired_count"] = strconv.Itoa(n)
	if n > 0 {
		out["first_fired_at"] = inst.Fired[0].UTC().Format(time.RFC3339)
	}
	if inst.Flapping() {
		out["flapping"] = "true"
	}
	if r.node {
		// What a node page must say besides its own text: which node
		// (and where), which checks and paths show it, since when.
		if inst.NodeAddress != "" {
			out["node_address"] = inst.NodeAddress
		}
		if len(inst.Affected) > 0 {
			out["affected"] = strings.Join(inst.Affected, ", ")
		}
		if len(inst.Folded) > 0 {
			out["folded"] = strings.Join(inst.Folded, "; ")
		}
		if !inst.ActiveAt.IsZero() {
			out["active_since"] = inst.ActiveAt.UTC().Format(time.RFC3339)
		}
		if nodeP90 != "" {
			out["node_p90"] = nodeP90
		}
		if siblingsP90 != "" {
			out["siblings_p90"] = siblingsP90
		}
	}
	if inst.State == Resolved {
		out["resolution"] = fmt.Sprintf("resolved after %s; fired %s in the last %s",
			durfmt.Format(inst.ResolvedAt.Sub(inst.FiredAt), durfmt.Coarse), times(n), WindowPhrase(e.flapWindow))
	}
	return out
}

// nodeFigures renders a node alert's own p90 and, for node_slowdown (its
// p90 over its siblings' median p90), the siblings' p90; "" when unknown.
func nodeFigures(r *rule, inst *Instance) (own, siblings string) {
	if !r.node || inst.p90 <= 0 {
		return "", ""
	}
	own = FormatValue("p90", inst.p90)
	if r.cfg.Expr.Measure == "node_slowdown" && inst.Value > 0 && !math.IsInf(inst.Value, 0) {
		siblings = FormatValue("p90", inst.p90/inst.Value)
	}
	return own, siblings
}

// WindowPhrase says "hour" for 1h and "day" for 24h, as people do, else
// 30m, 2h: "fired 3 times in the last hour".
func WindowPhrase(d time.Duration) string {
	switch d {
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return durfmt.Format(d, durfmt.Coarse)
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return strconv.Itoa(n) + " times"
}

func cloneInstance(i *Instance) Instance {
	c := *i
	c.Labels = maps.Clone(i.Labels)
	c.Annotations = maps.Clone(i.Annotations)
	c.Fired = append([]time.Time(nil), i.Fired...)
	c.Notify = append([]string(nil), i.Notify...)
	c.Affected = append([]string(nil), i.Affected...)
	c.Folded = append([]string(nil), i.Folded...)
	c.Details = maps.Clone(i.Details)
	c.shows = nil
	return c
}

// Instances returns copies of every live instance, sorted by key.
func (e *Engine) Instances() []Instance {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Instance, 0, len(e.instances))
	for _, inst := range e.instances {
		out = append(out, cloneInstance(inst))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Restore loads persisted instances (after a restart), so a firing alert
// is not paged again as new and a pending `for` timer continues.
func (e *Engine) Restore(list []Instance) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, inst := range list {
		in := cloneInstance(&inst)
		e.instances[in.Key] = &in
		if len(in.Fired) > 0 {
			e.history[in.Key] = append([]time.Time(nil), in.Fired...)
		}
	}
}
