package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/storage"
)

// Store is what the manager needs from storage: alert state that survives
// a restart, a durable notification queue and the timeline.
type Store interface {
	SaveAlert(ctx context.Context, a storage.Alert) error
	DeleteAlert(ctx context.Context, key string) error
	LoadAlerts(ctx context.Context) ([]storage.Alert, error)
	Enqueue(ctx context.Context, n storage.Notification) (int64, error)
	Due(ctx context.Context, notifier string, now time.Time, limit int) ([]storage.Notification, error)
	MarkSent(ctx context.Context, id int64) error
	MarkRetry(ctx context.Context, id int64, next time.Time, lastErr string) error
	MarkDropped(ctx context.Context, id int64, reason string) error
	QueueLength(ctx context.Context, notifier string) (int, error)
	AppendEvent(ctx context.Context, e storage.Event) (int64, error)
}

// NotifierFactory builds a notifier of one type.
type NotifierFactory func(cfg checks.Notifier, o NotifierOptions) (Notifier, error)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	Logger     zerolog.Logger
	Registerer prometheus.Registerer
	Store      Store
	// Factories maps a notifier type to its constructor.
	Factories map[string]NotifierFactory
	// Series lists what rules are evaluated on (targets and domains).
	Series   func() []Series
	Measures Measures
	// EvalInterval is the evaluation cadence (default 10s).
	EvalInterval time.Duration
	// ExternalURL is the status page's address, for generatorURL.
	ExternalURL string
	Version     string
	Now         func() time.Time
	// Backoff bounds delivery retries: first retry after BackoffBase,
	// doubling up to BackoffMax, with ±20% jitter. Defaults 1s and 2m.
	BackoffBase, BackoffMax time.Duration
}

// Manager runs the rule engine on a cadence, keeps its state in storage,
// and delivers notifications through a durable queue with retries.
type Manager struct {
	o      ManagerOptions
	log    zerolog.Logger
	engine *Engine
	rng    *rand.Rand

	mu        sync.Mutex
	notifiers map[string]*notifierState
	// lastSent is when each instance was last queued per notifier, for
	// resend_interval and repeat_interval; persisted with the instance.
	lastSent map[string]map[string]time.Time
	// withheld marks, per instance and notifier, a firing notification
	// that folding kept back (see holds): its resolution is not sent
	// either, and once the instance is firing and no longer held it is
	// sent. Persisted with the instance.
	withheld map[string]map[string]bool
	// absorbed is, for withheld notifications whose covering node alert
	// paged that notifier, when the node alert last covered them: they
	// belong to the node's incident and stay withheld for one rule window
	// after it, while their windows still hold the incident's slow runs.
	// Persisted with the instance.
	absorbed map[string]map[string]time.Time
	// firingKeys are the instances firing after the last evaluation (for
	// holds: whether a covering node alert has decided).
	firingKeys map[string]bool
	// affected is, per firing node alert, the keys of the firing alerts
	// folded into it as last seen, so a newly folded alert goes out as a
	// repeat of the node alert.
	affected map[string]string
	stored   map[string]bool // instance keys present in storage

	sent      *prometheus.CounterVec
	queue     *prometheus.GaugeVec
	queueErrs *prometheus.CounterVec
	wake      chan struct{}
	dispMu    sync.Mutex // one dispatch pass at a time

	// held are notifications storage refused (locked, disk full), oldest
	// first. They are queued before anything newer, so a storage hiccup
	// neither loses a page nor reorders the queue.
	heldMu  sync.Mutex
	held    []storage.Notification
	alertsC *alertsCollector
}

type notifierState struct {
	cfg checks.Notifier
	n   Notifier
	// routes: the receiver groups, inhibits and repeats by itself (a
	// LeaseHolder), so vantage sends it every alert unfolded and re-sends
	// firing ones every resend_interval instead of repeat_interval.
	routes bool
}

// persisted is what storage.Alert.Data holds.
type persisted struct {
	Instance Instance             `json:"instance"`
	LastSent map[string]time.Time `json:"last_sent,omitempty"`
	Withheld map[string]bool      `json:"withheld,omitempty"`
	Absorbed map[string]time.Time `json:"absorbed,omitempty"`
	Affected string               `json:"affected_sent,omitempty"`
}

// NewManager builds a manager; Configure gives it rules and notifiers.
func NewManager(o ManagerOptions) *Manager {
	if o.EvalInterval <= 0 {
		o.EvalInterval = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 2 * time.Minute
	}
	m := &Manager{
		o: o, log: o.Logger,
		engine:    New(Options{Logger: o.Logger}),
		rng:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b9)),
		notifiers: map[string]*notifierState{},
		lastSent:  map[string]map[string]time.Time{},
		withheld:  map[string]map[string]bool{},
		absorbed:  map[string]map[string]time.Time{},
		affected:  map[string]string{},
		stored:    map[string]bool{},
		wake:      make(chan struct{}, 1),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vantage_notifications_total",
			Help: "Notification deliveries by notifier and result (sent, failed, dropped)."}, []string{"notifier", "result"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vantage_notification_queue_length",
			Help: "Notifications waiting in the durable queue per notifier."}, []string{"notifier"}),
		queueErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vantage_notification_queue_errors_total",
			Help: "Failed writes to the durable notification queue after a delivery attempt (the notification may be sent again or held after a restart)."}, []string{"notifier"}),
	}
	m.alertsC = &alertsCollector{e: m.engine, desc: prometheus.NewDesc("vantage_alerts",
		"Alert instances by rule and state (pending, firing).", []string{"alertname", "state"}, nil)}
	if o.Registerer != nil {
		o.Registerer.MustRegister(m.sent, m.queue, m.queueErrs, m.alertsC)
	}
	return m
}

// SentCounter is vantage_notifications_total for a notifier and result.
func (m *Manager) SentCounter(notifier, result string) prometheus.Counter {
	return m.sent.WithLabelValues(notifier, result)
}

// Engine exposes the rule engine (for the API).
func (m *Manager) Engine() *Engine { return m.engine }

// Configure adopts cfg's rules and notifiers. A notifier that cannot be
// built is an error and nothing changes.
func (m *Manager) Configure(cfg *checks.Config) error {
	ns := map[string]*notifierState{}
	for _, nc := range cfg.Notifiers {
		f := m.o.Factories[nc.Type]
		if f == nil {
			return fmt.Errorf("notifier %q: type %q is not available in this build", nc.Name, nc.Type)
		}
		opts := NotifierOptions{Logger: m.log.With().Str("notifier", nc.Name).Logger(), Version: m.o.Version,
			ExternalURL: m.o.ExternalURL, Now: m.o.Now, FlapWindow: time.Duration(cfg.Global.FlapWindow)}
		n, err := f(nc, opts)
		if err != nil {
			return fmt.Errorf("notifier %q: %s", nc.Name, cfg.Secrets.Redact(err.Error()))
		}
		_, routes := n.(LeaseHolder)
		ns[nc.Name] = &notifierState{cfg: nc, n: n, routes: routes}
		for _, r := range []string{"sent", "failed", "dropped"} {
			m.sent.WithLabelValues(nc.Name, r)
		}
		m.queueErrs.WithLabelValues(nc.Name)
	}
	if err := m.engine.Configure(cfg); err != nil {
		return err
	}
	m.mu.Lock()
	for name := range m.notifiers {
		if ns[name] == nil {
			m.queue.DeleteLabelValues(name)
		}
	}
	m.notifiers = ns
	m.mu.Unlock()
	return nil
}

// Restore loads alert state from storage after a restart.
func (m *Manager) Restore(ctx context.Context) error {
	list, err := m.o.Store.LoadAlerts(ctx)
	if err != nil {
		return err
	}
	var insts []Instance
	m.mu.Lock()
	for _, a := range list {
		var p persisted
		if err := json.Unmarshal(a.Data, &p); err != nil || p.Instance.Key == "" {
			m.log.Warn().Str("alert", a.Key).Msg("dropping unreadable stored alert state")
			continue
		}
		insts = append(insts, p.Instance)
		if p.LastSent != nil {
			m.lastSent[p.Instance.Key] = p.LastSent
		}
		if p.Withheld != nil {
			m.withheld[p.Instance.Key] = p.Withheld
		}
		if p.Absorbed != nil {
			m.absorbed[p.Instance.Key] = p.Absorbed
		}
		if p.Affected != "" {
			m.affected[p.Instance.Key] = p.Affected
		}
		m.stored[a.Key] = true
	}
	m.mu.Unlock()
	m.engine.Restore(insts)
	m.log.Info().Int("instances", len(insts)).Msg("alert state restored")
	return nil
}

// Run evaluates and dispatches until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	evalT := time.NewTicker(m.o.EvalInterval)
	defer evalT.Stop()
	dispT := time.NewTicker(time.Second)
	defer dispT.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-evalT.C:
			m.Eval(ctx, m.o.Now())
			m.Dispatch(ctx, m.o.Now())
		case <-dispT.C:
			m.Dispatch(ctx, m.o.Now())
		case <-m.wake:
			m.Dispatch(ctx, m.o.Now())
		}
	}
}

func (m *Manager) event(ctx context.Context, e storage.Event) {
	if _, err := m.o.Store.AppendEvent(ctx, e); err != nil {
		m.log.Warn().Err(err).Str("kind", string(e.Kind)).Msg("timeline event not stored")
	}
}

// Eval runs one evaluation at now: state transitions go to the timeline
// and the notification queue, and state to storage.
func (m *Manager) Eval(ctx context.Context, now time.Time) []Transition {
	var series []Series
	if m.o.Series != nil {
		series = m.o.Series()
	}
	if b, ok := m.o.Measures.(interface{ Begin() }); ok {
		b.Begin() // lets a caching source drop the previous cycle's figures
	}
	trs := m.engine.Eval(now, series, m.o.Measures)
	firing := map[string]bool{}
	for _, inst := range m.engine.Instances() {
		if inst.State == Firing {
			firing[inst.Key] = true
		}
	}
	m.mu.Lock()
	m.firingKeys = firing
	m.mu.Unlock()
	for _, tr := range trs {
		inst := tr.Instance
		ev := storage.Event{Time: now, Alert: inst.Rule, Check: inst.Labels["check"], Path: inst.Labels["path"],
			Node: inst.Labels["node"], Domain: inst.Labels["domain"]}
		switch tr.To {
		case Pending:
			ev.Kind, ev.Detail = storage.AlertPending, conditionText(&inst)
		case Firing:
			ev.Kind, ev.Detail = storage.AlertFiring, conditionText(&inst)
			if sum := inst.Annotations["summary"]; sum != "" && IsNodeMeasure(inst.Measure) {
				// "node_degraded = 1" says nothing in a post-mortem; the
				// page's own words say which node, how bad and where.
				ev.Detail += ": " + sum
			}
			if inst.Flapping() {
				ev.Detail += fmt.Sprintf(" (flapping: fired %d times in the flap window)", inst.FiredCount())
			}
			if inst.InhibitedBy != "" {
				ev.Detail += " (folded into " + inst.InhibitedBy + ")"
			}
		case Resolved:
			ev.Kind, ev.Detail = storage.AlertResolved, inst.Annotations["resolution"]
		default:
			ev.Kind = ""
		}
		if ev.Kind != "" {
			m.event(ctx, ev)
		}
		switch tr.To {
		case Firing:
			// A new episode: what its page lists is the baseline for
			// repeats (see refold), not what the last episode's did.
			m.mu.Lock()
			delete(m.affected, inst.Key)
			m.mu.Unlock()
			m.enqueueAll(ctx, now, inst, "firing", false)
		case Resolved:
			m.enqueueAll(ctx, now, inst, "resolved", false)
		}
	}
	m.refold(ctx, now)
	m.resend(ctx, now)
	m.persist(ctx)
	return trs
}

// folds reports whether notifier name folds alerts into node alerts: the
// built-in ones do; Alertmanager gets every alert and inhibits with its
// own inhibit_rules (deploy/alertmanager).
func (m *Manager) folds(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	ns := m.notifiers[name]
	return ns != nil && !ns.routes
}

// holds reports whether inst's firing notification to notifier name is
// held back: for the built-in notifiers while a node alert covers it
// (Engine.fold), for Alertmanager while that node alert is still pending
// (Alertmanager cannot inhibit with an alert it does not have yet; once
// the node alert fires, both go and its inhibit_rules decide).
func (m *Manager) holds(name string, inst *Instance) bool {
	if inst.InhibitedBy == "" {
		return false
	}
	if m.folds(name) {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.firingKeys[inst.InhibitedBy]
}

// refold follows folding that changed without a state transition: a
// firing instance whose notification was withheld and is no longer held
// is sent now if its condition holds; a firing node alert into which another firing alert has
// folded since is sent again as a repeat, listing it. (Checks that merely
// start or stop showing the node's condition do not repeat the page: that
// would be a message per noisy evaluation.)
func (m *Manager) refold(ctx context.Context, now time.Time) {
	insts := m.engine.Instances()
	folded := map[string][]string{}
	for _, inst := range insts {
		if inst.State == Firing && inst.InhibitedBy != "" {
			folded[inst.InhibitedBy] = append(folded[inst.InhibitedBy], inst.Key)
		}
	}
	for _, inst := range insts {
		if inst.State != Firing {
			continue
		}
		m.mu.Lock()
		var names []string
		for name := range m.withheld[inst.Key] {
			names = append(names, name)
			// The node alert covering it has paged this (folding)
			// notifier: the alert is part of that incident from now on.
			// Alertmanager inhibits by itself and gets every alert.
			ns := m.notifiers[name]
			if c := inst.InhibitedBy; c != "" && ns != nil && !ns.routes && !m.lastSent[c][name].IsZero() {
				if m.absorbed[inst.Key] == nil {
					m.absorbed[inst.Key] = map[string]time.Time{}
				}
				m.absorbed[inst.Key][name] = now
			}
		}
		absorbed := maps.Clone(m.absorbed[inst.Key])
		m.mu.Unlock()
		sort.Strings(names)
		window := m.engine.Window(inst.Rule)
		for _, name := range names {
			// An alert folded into a node alert that paged is part of
			// that incident: when the node alert resolves, the alert's
			// window still holds the incident's slow runs (a p99 over 2m
			// outlives a node cleared 30 s after the fault), and paging it
			// then would be a second page for the same incident. Once a
			// whole window has passed since the node alert covered it,
			// the window holds only later runs: if its condition still
			// holds, that is a problem of its own, and it pages. One
			// whose node alert never paged (it stayed pending) goes out as
			// soon as it is no longer held. Either way only if its
			// condition holds now, not only through keep_firing_for.
			if at, ok := absorbed[name]; ok && now.Sub(at) <= window {
				continue
			}
			if m.holds(name, &inst) || !inst.LastTrueAt.Equal(now) {
				continue
			}
			m.unhold(inst.Key, name)
			m.enqueue(ctx, now, inst, name, "firing", false)
		}
		if inst.Affected == nil {
			continue // not a node alert
		}
		keys := folded[inst.Key] // sorted, as Instances is
		m.mu.Lock()
		prev, known := m.affected[inst.Key]
		// Everything announced in this episode so far: a check whose
		// alert stops and starts again while the node is slow on a share
		// of its runs is no news and repeats nothing.
		m.affected[inst.Key] = union(prev, keys)
		m.mu.Unlock()
		if !known || !grew(prev, keys) {
			continue
		}
		for _, name := range inst.Notify {
			m.mu.Lock()
			sent := !m.lastSent[inst.Key][name].IsZero()
			m.mu.Unlock()
			if sent && m.folds(name) {
				m.enqueue(ctx, now, inst, name, "firing", true)
			}
		}
	}
}

// union is prev (newline-joined) with now's keys added, sorted.
func union(prev string, now []string) string {
	set := map[string]bool{}
	for _, p := range strings.Split(prev, "\n") {
		if p != "" {
			set[p] = true
		}
	}
	for _, p := range now {
		set[p] = true
	}
	return strings.Join(slices.Sorted(maps.Keys(set)), "\n")
}

// grew reports whether now lists a key that prev (newline-joined) did not.
func grew(prev string, now []string) bool {
	old := map[string]bool{}
	for _, p := range strings.Split(prev, "\n") {
		old[p] = true
	}
	for _, p := range now {
		if !old[p] {
			return true
		}
	}
	return false
}

// resend re-queues firing instances: to Alertmanager every resend_interval
// (its alerts expire otherwise), to chat and webhooks every repeat_interval.
func (m *Manager) resend(ctx context.Context, now time.Time) {
	for _, inst := range m.engine.Instances() {
		if inst.State != Firing {
			continue
		}
		for _, name := range inst.Notify {
			m.mu.Lock()
			ns := m.notifiers[name]
			last := m.lastSent[inst.Key][name]
			m.mu.Unlock()
			if ns == nil || last.IsZero() {
				continue
			}
			if inst.InhibitedBy != "" && !ns.routes {
				continue // folded: the node alert's repeats stand for it
			}
			every := time.Duration(ns.cfg.ResendInterval)
			if !ns.routes {
				every = 0
				if ns.cfg.RepeatInterval != nil {
					every = time.Duration(*ns.cfg.RepeatInterval)
				}
			}
			if every > 0 && now.Sub(last) >= every {
				m.enqueue(ctx, now, inst, name, "firing", true)
			}
		}
	}
}

func (m *Manager) enqueueAll(ctx context.Context, now time.Time, inst Instance, status string, resend bool) {
	for _, name := range inst.Notify {
		switch {
		case status == "firing" && !resend && m.holds(name, &inst):
			// Folded into a node alert: its page stands for this one.
			m.mu.Lock()
			if m.withheld[inst.Key] == nil {
				m.withheld[inst.Key] = map[string]bool{}
			}
			m.withheld[inst.Key][name] = true
			m.mu.Unlock()
			continue
		case status == "resolved" && m.unhold(inst.Key, name):
			m.mu.Lock()
			delete(m.absorbed[inst.Key], name)
			if len(m.absorbed[inst.Key]) == 0 {
				delete(m.absorbed, inst.Key)
			}
			m.mu.Unlock()
			continue // never sent, so nothing to resolve
		}
		m.enqueue(ctx, now, inst, name, status, resend)
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// unhold clears a withheld mark and reports whether there was one.
func (m *Manager) unhold(key, name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.withheld[key][name] {
		return false
	}
	delete(m.withheld[key], name)
	if len(m.withheld[key]) == 0 {
		delete(m.withheld, key)
	}
	return true
}

// queued is the payload stored in the queue.
type queued struct {
	Notification Notification `json:"notification"`
	Resend       bool         `json:"resend,omitempty"`
}

func (m *Manager) enqueue(ctx context.Context, now time.Time, inst Instance, notifier, status string, resend bool) {
	m.mu.Lock()
	if m.notifiers[notifier] == nil {
		m.mu.Unlock()
		return
	}
	if m.lastSent[inst.Key] == nil {
		m.lastSent[inst.Key] = map[string]time.Time{}
	}
	m.lastSent[inst.Key][notifier] = now
	m.mu.Unlock()
	n := Notification{Instance: inst, Status: status, StartsAt: inst.FiredAt,
		GeneratorURL: m.generatorURL(inst)}
	if status == "resolved" {
		n.EndsAt = inst.ResolvedAt
	}
	payload, err := json.Marshal(queued{Notification: n, Resend: resend})
	if err != nil {
		m.log.Error().Err(err).Msg("encoding notification")
		return
	}
	m.heldMu.Lock()
	m.held = append(m.held, storage.Notification{Notifier: notifier, AlertKey: inst.Key,
		Payload: payload, Created: now, NextAttempt: now})
	if over := len(m.held) - maxHeld; over > 0 {
		m.log.Error().Int("dropped", over).Msg("storage has refused notifications for too long; dropping the oldest held ones")
		m.held = m.held[over:]
	}
	m.heldMu.Unlock()
	m.flushHeld(ctx)
}

// maxHeld bounds the notifications kept in memory while storage refuses
// them.
const maxHeld = 10000

// flushHeld moves held notifications into the durable queue, in order,
// stopping at the first refusal (retried on the next evaluation or
// dispatch pass).
func (m *Manager) flushHeld(ctx context.Context) {
	m.heldMu.Lock()
	defer m.heldMu.Unlock()
	for len(m.held) > 0 {
		n := m.held[0]
		if _, err := m.o.Store.Enqueue(ctx, n); err != nil {
			// Storage is the durable queue; say so loudly. The notification
			// stays in memory and is retried, ahead of anything newer.
			m.log.Error().Err(err).Str("notifier", n.Notifier).Str("alert", ruleOf(n.AlertKey)).
				Int("held", len(m.held)).Msg("notification could not be queued; holding it in memory and retrying")
			return
		}
		m.held[0] = storage.Notification{}
		m.held = m.held[1:]
	}
}

func (m *Manager) generatorURL(inst Instance) string {
	if m.o.ExternalURL == "" {
		return ""
	}
	return strings.TrimRight(m.o.ExternalURL, "/") + "/#alert=" + urlQueryEscape(inst.Key)
}

// persist writes every live instance (state changes each evaluation, so
// all are written; there are few) and deletes those the engine dropped.
func (m *Manager) persist(ctx context.Context) {
	live := map[string]bool{}
	for _, inst := range m.engine.Instances() {
		live[inst.Key] = true
		m.mu.Lock()
		p := persisted{Instance: inst, LastSent: m.lastSent[inst.Key], Withheld: m.withheld[inst.Key],
			Absorbed: m.absorbed[inst.Key], Affected: m.affected[inst.Key]}
		data, err := json.Marshal(p)
		m.mu.Unlock()
		if err != nil {
			continue
		}
		a := storage.Alert{Key: inst.Key, Rule: inst.Rule, Labels: inst.Labels, Annotations: inst.Annotations,
			State: string(inst.State), ActiveSince: inst.ActiveAt, FiredAt: inst.Fired, ResolvedAt: inst.ResolvedAt,
			Value: inst.Value, Data: data}
		if err := m.o.Store.SaveAlert(ctx, a); err != nil {
			m.log.Warn().Err(err).Str("alert", inst.Key).Msg("alert state not saved")
			continue
		}
		m.mu.Lock()
		m.stored[inst.Key] = true
		m.mu.Unlock()
	}
	m.mu.Lock()
	var gone []string
	for k := range m.stored {
		if !live[k] {
			gone = append(gone, k)
		}
	}
	m.mu.Unlock()
	for _, k := range gone {
		if err := m.o.Store.DeleteAlert(ctx, k); err == nil {
			m.mu.Lock()
			delete(m.stored, k)
			delete(m.lastSent, k)
			delete(m.withheld, k)
			delete(m.absorbed, k)
			delete(m.affected, k)
			m.mu.Unlock()
		}
	}
}

func (m *Manager) backoff(attempts int) time.Duration {
	d := min(float64(m.o.BackoffBase)*math.Pow(2, float64(attempts-1)), float64(m.o.BackoffMax))
	m.mu.Lock()
	j := 0.8 + 0.4*m.rng.Float64()
	m.mu.Unlock()
	return time.Duration(d * j)
}

// far is "no time limit" for reading the head of a queue.
var far = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// Dispatch makes one delivery pass at now. Each notifier's queue is strictly
// ordered: when its head waits for a retry, nothing behind it is sent, so a
// receiver that comes back gets every notification once, in order.
func (m *Manager) Dispatch(ctx context.Context, now time.Time) {
	m.dispMu.Lock()
	defer m.dispMu.Unlock()
	m.flushHeld(ctx)
	m.mu.Lock()
	names := make([]string, 0, len(m.notifiers))
	for name := range m.notifiers {
		names = append(names, name)
	}
	m.mu.Unlock()
	sort.Strings(names)
	for _, name := range names {
		m.dispatchOne(ctx, now, name)
		if n, err := m.o.Store.QueueLength(ctx, name); err == nil {
			m.queue.WithLabelValues(name).Set(float64(n))
		}
	}
}

const batchSize = 20

func (m *Manager) dispatchOne(ctx context.Context, now time.Time, name string) {
	m.mu.Lock()
	ns := m.notifiers[name]
	m.mu.Unlock()
	if ns == nil {
		return
	}
	maxAge := time.Duration(ns.cfg.MaxAge)
	for round := 0; round < 50; round++ { // bounded per pass
		items, err := m.o.Store.Due(ctx, name, far, batchSize)
		if err != nil {
			m.log.Warn().Err(err).Str("notifier", name).Msg("reading notification queue")
			return
		}
		var batch []storage.Notification
		var payloads []queued
		for _, it := range items {
			if it.NextAttempt.After(now) {
				break // the head waits for its retry; keep order
			}
			if maxAge > 0 && now.Sub(it.Created) > maxAge {
				reason := fmt.Sprintf("older than max_age %s after %d attempts; last error: %s", maxAge, it.Attempts, it.LastError)
				if err := m.o.Store.MarkDropped(ctx, it.ID, reason); err == nil {
					m.sent.WithLabelValues(name, "dropped").Inc()
					m.log.Error().Str("notifier", name).Str("alert", it.AlertKey).Msg("notification dropped: " + reason)
					m.event(ctx, storage.Event{Time: now, Kind: storage.NotificationDropped, Notifier: name,
						Alert: ruleOf(it.AlertKey), Detail: reason})
				}
				continue
			}
			var q queued
			if err := json.Unmarshal(it.Payload, &q); err != nil {
				m.storeErr(m.o.Store.MarkDropped(ctx, it.ID, "unreadable payload"), name, "dropping an unreadable notification")
				m.sent.WithLabelValues(name, "dropped").Inc()
				continue
			}
			batch = append(batch, it)
			payloads = append(payloads, q)
		}
		if len(batch) == 0 {
			return
		}
		notes := make([]Notification, len(payloads))
		for i, q := range payloads {
			notes[i] = q.Notification
		}
		sctx, cancel := context.WithTimeout(ctx, time.Duration(ns.cfg.Timeout)+time.Second)
		err = ns.n.Send(sctx, notes)
		cancel()
		switch {
		case err == nil:
			for i, it := range batch {
				m.storeErr(m.o.Store.MarkSent(ctx, it.ID), name, "marking a notification sent")
				m.sent.WithLabelValues(name, "sent").Inc()
				if !payloads[i].Resend {
					n := payloads[i].Notification
					m.event(ctx, storage.Event{Time: now, Kind: storage.NotificationSent, Notifier: name,
						Alert: n.Instance.Rule, Check: n.Instance.Labels["check"], Path: n.Instance.Labels["path"],
						Node: n.Instance.Labels["node"], Detail: n.Status})
				}
			}
			if len(items) < batchSize {
				return
			}
		case IsPermanent(err):
			for _, it := range batch {
				m.storeErr(m.o.Store.MarkDropped(ctx, it.ID, "rejected: "+err.Error()), name, "dropping a rejected notification")
				m.sent.WithLabelValues(name, "failed").Inc()
			}
			m.log.Error().Str("notifier", name).Err(err).Msg("receiver rejected notifications; not retrying")
			m.event(ctx, storage.Event{Time: now, Kind: storage.NotificationFailed, Notifier: name,
				Alert: ruleOf(batch[0].AlertKey), Detail: "rejected, not retried: " + err.Error()})
		default:
			attempts := batch[0].Attempts + 1
			next := now.Add(m.backoff(attempts))
			for _, it := range batch {
				m.storeErr(m.o.Store.MarkRetry(ctx, it.ID, next, err.Error()), name, "scheduling a notification's retry")
				m.sent.WithLabelValues(name, "failed").Inc()
			}
			if batch[0].Attempts == 0 {
				m.event(ctx, storage.Event{Time: now, Kind: storage.NotificationFailed, Notifier: name,
					Alert: ruleOf(batch[0].AlertKey), Detail: err.Error() + "; retrying"})
			}
			m.log.Warn().Str("notifier", name).Err(err).Int("attempt", attempts).
				Time("next_attempt", next).Msg("notification delivery failed; will retry")
			return
		}
	}
}

// storeErr logs and counts a failed write to the notification queue: the
// delivery itself went as logged, but the queue may now send it again
// (sent) or hold it (dropped, retry) after a restart.
func (m *Manager) storeErr(err error, notifier, doing string) {
	if err == nil {
		return
	}
	m.queueErrs.WithLabelValues(notifier).Inc()
	m.log.Error().Err(err).Str("notifier", notifier).Msg("notification queue: " + doing)
}

func ruleOf(key string) string {
	rule, _, _ := strings.Cut(key, "|")
	return rule
}

func urlQueryEscape(s string) string {
	r := strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", " ", "%20", "|", "%7C", "=", "%3D", "\"", "%22")
	return r.Replace(s)
}

// alertsCollector exports vantage_alerts{alertname,state} from the
// engine at scrape time.
type alertsCollector struct {
	e    *Engine
	desc *prometheus.Desc
}

func (c *alertsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *alertsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	c.e.mu.Lock()
	for _, r := range c.e.rules {
		counts[[2]string{r.cfg.Name, string(Pending)}] += 0
		counts[[2]string{r.cfg.Name, string(Firing)}] += 0
	}
	for _, inst := range c.e.instances {
		if inst.State == Pending || inst.State == Firing {
			counts[[2]string{inst.Rule, string(inst.State)}]++
		}
	}
	c.e.mu.Unlock()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}
