package daemon

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/stats"
	"github.com/vantage-monitoring/vantage/storage"
	"github.com/vantage-monitoring/vantage/web"
)

// lastRun is what the status page needs of a target's latest run.
type lastRun struct {
	up       bool
	result   probe.Result
	reason   string
	start    time.Time
	duration time.Duration
}

// statusSink keeps each target's latest observation: its state after the
// hysteresis is known only to the scheduler and its sinks.
type statusSink struct {
	mu sync.Mutex
	m  map[string]lastRun
}

func newStatusSink() *statusSink { return &statusSink{m: map[string]lastRun{}} }

func (s *statusSink) Observe(o *probe.Observation) {
	if o.Target == nil || o.Outcome == nil {
		return
	}
	redact := o.Target.Redact
	if redact == nil {
		redact = func(s string) string { return s }
	}
	lr := lastRun{up: o.Up, result: o.Outcome.Result, reason: redact(storage.StripURLCredentials(o.Outcome.Reason)),
		start: o.Outcome.Start, duration: o.Outcome.Duration}
	s.mu.Lock()
	s.m[o.Target.Key] = lr
	s.mu.Unlock()
}

func (s *statusSink) Forget(t *probe.Target) {
	s.mu.Lock()
	delete(s.m, t.Key)
	s.mu.Unlock()
}

func (s *statusSink) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *statusSink) get(key string) (lastRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lr, ok := s.m[key]
	return lr, ok
}

// statusSource implements web.StatusSource from the daemon's parts.
type statusSource struct {
	d    *Daemon
	last *statusSink

	mu     sync.Mutex
	failed map[string]failedRef // latest failed run id per target
	snapAt time.Time
	snap   []stats.SeriesStats
}

// failedRef caches a target's latest failed run id, valid while the
// failure it was found for is the latest one.
type failedRef struct {
	start time.Time
	id    int64
}

var _ web.StatusSource = (*statusSource)(nil)

func newStatusSource(d *Daemon, last *statusSink) *statusSource {
	return &statusSource{d: d, last: last, failed: map[string]failedRef{}}
}

// snapshot memoises the statistics snapshot briefly: the page asks for
// checks and domains in one render, and several viewers refresh at once.
func (s *statusSource) snapshot() []stats.SeriesStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := time.Now(); s.snap == nil || now.Sub(s.snapAt) > time.Second {
		s.snap, s.snapAt = s.d.stats.Snapshot(), now
	}
	return s.snap
}

func windowStatus(ws stats.WindowStats) web.WindowStatus {
	out := web.WindowStatus{Window: model.Duration(ws.Window), Runs: ws.Runs}
	if ws.Runs > 0 {
		r := ws.SuccessRatio()
		out.SuccessRatio = &r
	}
	if ws.Samples > 0 {
		p50, p90, p99 := ws.P50, ws.P90, ws.P99
		out.P50, out.P90, out.P99 = &p50, &p90, &p99
	}
	return out
}

// exported picks the quantile windows (the ones the metrics export) out of
// a series' kept windows.
func exported(list []stats.WindowStats, want []time.Duration) []web.WindowStatus {
	out := make([]web.WindowStatus, 0, len(want))
	for _, w := range want {
		for _, ws := range list {
			if ws.Window == w {
				out = append(out, windowStatus(ws))
				break
			}
		}
	}
	return out
}

// Checks implements web.StatusSource.
func (s *statusSource) Checks(ctx context.Context) []web.CheckStatus {
	targets := s.d.sched.Targets()
	byKey := map[stats.Key][]stats.WindowStats{}
	for _, ss := range s.snapshot() {
		if ss.Key.Step == "" && ss.Key.Domain == "" {
			byKey[ss.Key] = ss.Windows
		}
	}
	_, wins := s.d.stats.Windows()
	lab := s.d.metrics.Labeler()
	names := lab.Names()
	out := make([]web.CheckStatus, 0, len(targets))
	for _, t := range targets {
		c := web.CheckStatus{Target: t.Key, Check: t.Check.Name, Type: t.Check.Type, Pages: t.Check.Traits().Pages, Node: t.Node.Label(),
			NodeAddress: t.Node.Address(), State: web.StateUnknown, Labels: make(map[string]string, len(names))}
		if t.Path != nil {
			c.Path = t.Path.Name()
		}
		for i, v := range lab.Values(t) {
			if i < len(names) {
				c.Labels[names[i]] = v
			}
		}
		c.Windows = exported(byKey[stats.Key{Target: t.Key}], wins)
		if f, ok := s.d.stats.NodeSlowdown(t.Key); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			c.NodeSlowdown = &f
		}
		if lr, ok := s.last.get(t.Key); ok {
			c.State = web.StateDown
			if lr.up {
				c.State = web.StateUp
			}
			c.LastResult, c.LastReason = string(lr.result), lr.reason
			c.LastRunAt, c.LastDuration = lr.start, lr.duration.Seconds()
			if !lr.up || lr.result != probe.Success {
				c.LastFailedRunID = s.failedRun(ctx, t.Key, lr)
			}
		}
		out = append(out, c)
	}
	return out
}

// failedRun finds the target's latest failed run in storage. Runs are
// written asynchronously, so the newest failure may not be there yet; the
// previous one is linked meanwhile and the lookup repeats next time.
func (s *statusSource) failedRun(ctx context.Context, key string, lr lastRun) int64 {
	st := s.d.store
	if st == nil {
		return 0
	}
	s.mu.Lock()
	ref, ok := s.failed[key]
	s.mu.Unlock()
	if ok && lr.result != probe.Success && ref.start.Equal(lr.start) {
		return ref.id
	}
	if ok && lr.result == probe.Success {
		// Down but recovering: the latest failure is older than the last run.
		return ref.id
	}
	run, err := st.LatestFailedRun(ctx, key)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			s.d.log.Warn().Err(err).Str("target", key).Msg("looking up the latest failed run")
		}
		return ref.id
	}
	s.mu.Lock()
	s.failed[key] = failedRef{start: run.Start, id: run.ID}
	if len(s.failed) > 4*s.last.size()+64 {
		// Targets come and go with reloads and DNS; keep the cache bounded.
		s.failed = map[string]failedRef{key: {start: run.Start, id: run.ID}}
	}
	s.mu.Unlock()
	return run.ID
}

// Domains implements web.StatusSource: the browser domain series over the
// shortest quantile window.
func (s *statusSource) Domains(context.Context) []web.DomainStatus {
	_, wins := s.d.stats.Windows()
	if len(wins) == 0 {
		return nil
	}
	var out []web.DomainStatus
	for _, ss := range s.snapshot() {
		if ss.Key.Domain == "" {
			continue
		}
		ws := exported(ss.Windows, wins[:1])
		if len(ws) == 0 {
			continue
		}
		out = append(out, web.DomainStatus{Target: ss.Key.Target, Check: ss.Check, Path: ss.Path, Node: ss.Node,
			Domain: ss.Key.Domain, Window: ws[0]})
	}
	return out
}

// Alerts implements web.StatusSource.
func (s *statusSource) Alerts(context.Context) []web.AlertStatus {
	if s.d.alerts == nil {
		return nil
	}
	list := s.d.alerts.Engine().Instances()
	out := make([]web.AlertStatus, 0, len(list))
	for i := range list {
		inst := &list[i]
		a := web.AlertStatus{Name: inst.Rule, Key: inst.Key, Labels: inst.Labels, Annotations: inst.Annotations,
			State: string(inst.State), Measure: inst.Measure, ActiveAt: inst.ActiveAt, FiredAt: inst.FiredAt,
			ResolvedAt: inst.ResolvedAt, FiredCount: inst.FiredCount(), Flapping: inst.Flapping(),
			InhibitedBy: inst.InhibitedBy}
		if v := inst.Value; !math.IsNaN(v) && !math.IsInf(v, 0) {
			a.Value = &v
			a.ValueText = alerting.FormatValue(inst.Measure, v)
		}
		if len(inst.Fired) > 0 {
			a.FirstFiredAt = inst.Fired[0]
		}
		out = append(out, a)
	}
	return out
}

// Events implements web.StatusSource.
func (s *statusSource) Events(ctx context.Context, n int) ([]storage.Event, error) {
	if s.d.store == nil {
		return nil, nil
	}
	evs, err := s.d.store.LatestEvents(ctx, n)
	if evs == nil && err == nil {
		evs = []storage.Event{}
	}
	return evs, err
}

// registerStatus adds the status page and /api/v1/checks, /api/v1/alerts.
func (d *Daemon) registerStatus() error {
	title := "vantage"
	if loc := d.cfg.Global.Location; loc != "" {
		title += " · " + loc
	}
	st, err := web.NewStatus(web.StatusOptions{
		Source: newStatusSource(d, d.status), Store: d.store, Logger: d.log, Location: time.Local, Title: title,
		Redact: func(s string) string { return d.Config().Secrets.Redact(s) },
	})
	if err != nil {
		return err
	}
	st.Register(d.web)
	return nil
}
