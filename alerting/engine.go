// Package alerting evaluates vantage's own alert rules (SPEC §6) from the
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
}

// Measures answers a rule's measure for a series over a window.
type Measures interface {
	Measure(measure string, s Series, window time.Duration) (float64, bool)
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
}

type rule struct {
	cfg         checks.Alert
	annotations map[string]*template.Template
	domain      bool     // measure is per browser domain
	keyBy       []string // cfg.By sorted and unique: the instance key's order
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
		instances: map[string]*Instance{}, history: map[string][]time.Time{}, flapWindow: time.Hour}
}

// Configure adopts cfg's rules. Instances of rules that still exist keep
// their state; those of removed rules are dropped.
func (e *Engine) Configure(cfg *checks.Config) error {
	var rules []*rule
	for _, a := range cfg.Alerts {
		r := &rule{cfg: a, annotations: map[string]*template.Template{},
			domain: a.Expr.Measure == "domain_error_ratio" || a.Expr.Measure == "domain_p90"}
		r.keyBy = append([]string(nil), a.By...)
		sort.Strings(r.keyBy)
		r.keyBy = slices.Compact(r.keyBy)
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
	e.rules = rules
	e.location = cfg.Global.Location
	if cfg.Global.FlapWindow > 0 {
		e.flapWindow = time.Duration(cfg.Global.FlapWindow)
	}
	names := map[string]bool{}
	for _, r := range rules {
		names[r.cfg.Name] = true
	}
	for k, inst := range e.instances {
		if !names[inst.Rule] {
			delete(e.instances, k)
		}
	}
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
	value  float64
	holds  bool
	seen   bool
}

// Eval evaluates every rule at now and returns the transitions, in a
// stable order (by rule, then instance key).
func (e *Engine) Eval(now time.Time, series []Series, m Measures) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Transition
	var buf []byte
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
				continue
			}
			h := holds(r.cfg.Expr.Op, v, r.cfg.Expr.Value)
			buf = r.appendKey(buf[:0], s)
			g := groups[string(buf)]
			if g == nil {
				// A group matters only when it holds or has an instance to
				// update; most series are healthy, and skipping them keeps a
				// cycle over 10k targets cheap. (A healthy series cannot be
				// "worse" than a holding one of the same group.)
				if _, live := e.instances[string(buf)]; !h && !live {
					continue
				}
				g = &group{labels: r.groupLabels(s), value: v}
				groups[string(buf)] = g
			}
			if !g.seen || worse(r.cfg.Expr.Op, v, g.value) {
				g.value = v
			}
			g.seen = true
			g.holds = g.holds || h
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
				out = append(out, tr)
			}
		}
	}
	e.gc(now)
	return out
}

// step advances one instance by one evaluation.
func (e *Engine) step(now time.Time, r *rule, key string, g *group) (Transition, bool) {
	inst := e.instances[key]
	cond := g != nil && g.holds
	if inst == nil {
		if !cond {
			return Transition{}, false
		}
		inst = &Instance{Key: key, Rule: r.cfg.Name, State: Inactive, Notify: r.cfg.Notify, Measure: r.cfg.Expr.Measure}
		e.instances[key] = inst
	}
	if g != nil && g.seen {
		inst.Value = g.value
		inst.Labels = e.labels(r, g.labels)
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
		return Transition{}, false
	}
	return Transition{From: from, To: inst.State, Instance: cloneInstance(inst)}, true
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

// HumanDuration renders d coarsely: 45s, 7m, 2h5m.
func HumanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return strconv.Itoa(int(d.Round(time.Minute)/time.Minute)) + "m"
	default:
		d = d.Round(time.Minute)
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return strconv.Itoa(h) + "h"
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
}

// annotations renders the rule's templates and adds the flap memory:
// fired_count, first_fired_at, flapping, and for a resolved instance a
// resolution that says how long it fired and how often it came back.
func (e *Engine) annotations(r *rule, inst *Instance) map[string]string {
	data := map[string]any{}
	for k, v := range inst.Labels {
		data[k] = v
	}
	data["value"] = FormatValue(r.cfg.Expr.Measure, inst.Value)
	data["raw_value"] = inst.Value
	data["threshold"] = FormatValue(r.cfg.Expr.Measure, r.cfg.Expr.Value)
	data["measure"] = r.cfg.Expr.Measure
	out := map[string]string{}
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
	if inst.State == Resolved {
		out["resolution"] = fmt.Sprintf("resolved after %s; fired %s in the last %s",
			HumanDuration(inst.ResolvedAt.Sub(inst.FiredAt)), times(n), WindowPhrase(e.flapWindow))
	}
	return out
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
	return HumanDuration(d)
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return strconv.Itoa(n) + " times"
}

func cloneInstance(i *Instance) Instance {
	c := *i
	c.Labels = cloneMap(i.Labels)
	c.Annotations = cloneMap(i.Annotations)
	c.Fired = append([]time.Time(nil), i.Fired...)
	c.Notify = append([]string(nil), i.Notify...)
	return c
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
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
