package probe_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/httpprobe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// scriptProber is a real Prober whose behaviour the test scripts: it
// records concurrency and returns results from a function.
type scriptProber struct {
	sleep    time.Duration
	result   func(t *probe.Target, n int) probe.Result
	mu       sync.Mutex
	runs     map[string]int
	inflight atomic.Int32
	maxIn    atomic.Int32
	perKey   sync.Map // key -> *atomic.Int32
	overlap  atomic.Bool
}

func (p *scriptProber) Probe(ctx context.Context, t *probe.Target) probe.Outcome {
	n := p.inflight.Add(1)
	defer p.inflight.Add(-1)
	for {
		m := p.maxIn.Load()
		if n <= m || p.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	c, _ := p.perKey.LoadOrStore(t.Key, new(atomic.Int32))
	if c.(*atomic.Int32).Add(1) > 1 {
		p.overlap.Store(true)
	}
	defer c.(*atomic.Int32).Add(-1)
	p.mu.Lock()
	if p.runs == nil {
		p.runs = map[string]int{}
	}
	p.runs[t.Key]++
	k := p.runs[t.Key]
	p.mu.Unlock()
	if p.sleep > 0 {
		select {
		case <-time.After(p.sleep):
		case <-ctx.Done():
		}
	}
	r := probe.Success
	if p.result != nil {
		r = p.result(t, k)
	}
	return probe.Outcome{Result: r, Duration: time.Millisecond}
}

func (p *scriptProber) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs[key]
}

func (p *scriptProber) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.runs {
		n += c
	}
	return n
}

type recordSink struct {
	mu        sync.Mutex
	obs       []probe.Observation
	forgotten []string
}

func (s *recordSink) Observe(o *probe.Observation) {
	s.mu.Lock()
	s.obs = append(s.obs, *o)
	s.mu.Unlock()
}
func (s *recordSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.obs)
}

func (s *recordSink) Forget(t *probe.Target) {
	s.mu.Lock()
	s.forgotten = append(s.forgotten, t.Key)
	s.mu.Unlock()
}

func testConfig(n int, interval, timeout time.Duration, nodes []string) *checks.Config {
	cfg := &checks.Config{Secrets: checks.NewRedactor()}
	cfg.Global.DownAfter, cfg.Global.UpAfter = 2, 2
	cfg.Paths = []checks.Path{{Name: "direct"}}
	for i := 0; i < n; i++ {
		c := checks.Check{Name: fmt.Sprintf("c%03d", i), Type: "test", Spec: &httpprobe.Config{URL: "http://127.0.0.1:1/"},
			Interval: model.Duration(interval), Timeout: model.Duration(timeout), Paths: []string{"direct"}}
		if nodes != nil {
			c.Nodes = &checks.Nodes{}
			for _, a := range nodes {
				c.Nodes.Addresses = append(c.Nodes.Addresses, checks.NodeAddr{Address: a})
			}
		}
		cfg.Checks = append(cfg.Checks, c)
	}
	return cfg
}

func paths(t *testing.T, cfg *checks.Config) map[string]*netpath.Path {
	t.Helper()
	out := map[string]*netpath.Path{}
	for _, pc := range cfg.Paths {
		p, err := netpath.New(pc)
		if err != nil {
			t.Fatal(err)
		}
		out[pc.Name] = p
	}
	return out
}

func start(t *testing.T, s *probe.Scheduler) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

func TestNextSlotStableAndSpread(t *testing.T) {
	iv := 10 * time.Second
	now := time.Unix(1_800_000_000, 123)
	buckets := make([]int, 10)
	for i := 0; i < 2000; i++ {
		key := fmt.Sprintf("check-%d/direct/10.0.0.%d", i, i%3)
		a := probe.NextSlot(key, iv, now)
		b := probe.NextSlot(key, iv, now)
		if !a.Equal(b) {
			t.Fatalf("slot not stable for %s", key)
		}
		if !a.After(now) || a.Sub(now) > iv {
			t.Fatalf("slot %v not within one interval after %v", a, now)
		}
		// The phase is the same in the next interval.
		if c := probe.NextSlot(key, iv, a); c.Sub(a) != iv {
			t.Fatalf("next slot after %v is %v, want +%v", a, c, iv)
		}
		buckets[a.UnixNano()%int64(iv)/int64(time.Second)]++
	}
	for i, n := range buckets {
		if n < 140 || n > 260 { // 200 expected per bucket
			t.Errorf("phase bucket %d has %d of 2000 targets; phases are not spread", i, n)
		}
	}
}

func TestSchedulerRunsEveryTargetAtInterval(t *testing.T) {
	cfg := testConfig(20, 100*time.Millisecond, 50*time.Millisecond, nil)
	p := &scriptProber{}
	sink := &recordSink{}
	reg := prometheus.NewRegistry()
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), Registerer: reg,
		Probers: map[string]probe.Prober{"test": p}, Sinks: []probe.Sink{sink}})
	s.Apply(cfg, paths(t, cfg))
	began := time.Now()
	start(t, s)
	// Every target runs again and again; a loaded machine may delay runs
	// (they are skipped, never bunched), so only the upper bound is exact.
	testenv.Eventually(t, time.Minute, "every target run 10 times", func() error {
		for _, tg := range s.Targets() {
			if n := p.count(tg.Key); n < 10 {
				return fmt.Errorf("%s ran %d times", tg.Key, n)
			}
		}
		return nil
	})
	counts := map[string]int{}
	for _, tg := range s.Targets() {
		counts[tg.Key] = p.count(tg.Key)
	}
	limit := int(time.Since(began)/(100*time.Millisecond)) + 1
	for k, n := range counts {
		if n > limit {
			t.Errorf("%s ran %d times, more than once per 100ms interval (%d)", k, n, limit)
		}
	}
	if got := len(s.Targets()); got != 20 {
		t.Fatalf("targets = %d, want 20", got)
	}
	if testutil.CollectAndCount(s.StartDelay()) == 0 {
		t.Fatal("start delay not observed")
	}
}

func TestSchedulerNeverOverlapsAndCountsSkips(t *testing.T) {
	cfg := testConfig(3, 50*time.Millisecond, 40*time.Millisecond, nil)
	// The probe ignores the timeout for a while: sleeps 130ms, longer than
	// two intervals (timeout cancels ctx but the probe returns only then).
	p := &scriptProber{sleep: 130 * time.Millisecond}
	reg := prometheus.NewRegistry()
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), Registerer: reg,
		Probers: map[string]probe.Prober{"test": slowIgnoringCtx{p}}})
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	// Each run spans more than two slots, so skips must add up.
	testenv.Eventually(t, time.Minute, "3 skipped runs counted for c000", func() error {
		if skipped := testutil.ToFloat64(mustCounter(t, reg, "vantage_scheduler_skipped_runs_total", "c000")); skipped < 3 {
			return fmt.Errorf("skipped runs for c000 = %v", skipped)
		}
		return nil
	})
	if p.overlap.Load() {
		t.Fatal("a target ran concurrently with itself")
	}
}

// slowIgnoringCtx sleeps regardless of ctx, like a kind stuck in a syscall.
type slowIgnoringCtx struct{ p *scriptProber }

func (s slowIgnoringCtx) Probe(_ context.Context, t *probe.Target) probe.Outcome {
	return s.p.Probe(context.Background(), t)
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name, check string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "check" && l.GetValue() == check {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
}

func TestSchedulerGlobalLimit(t *testing.T) {
	cfg := testConfig(10, 100*time.Millisecond, 90*time.Millisecond, nil)
	p := &scriptProber{sleep: 60 * time.Millisecond}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), MaxConcurrent: 2,
		Probers: map[string]probe.Prober{"test": p}})
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	testenv.Eventually(t, time.Minute, "20 runs", func() error {
		if n := p.total(); n < 20 {
			return fmt.Errorf("%d runs", n)
		}
		return nil
	})
	if m := p.maxIn.Load(); m > 2 || m < 1 {
		t.Fatalf("max in-flight = %d, want 1..2", m)
	}
}

func TestSchedulerTimeoutBecomesTimeout(t *testing.T) {
	cfg := testConfig(1, 100*time.Millisecond, 20*time.Millisecond, nil)
	p := &errAfterCtx{}
	sink := &recordSink{}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(),
		Probers: map[string]probe.Prober{"test": p}, Sinks: []probe.Sink{sink}})
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	testenv.Eventually(t, time.Minute, "an observation", func() error {
		if sink.len() == 0 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if r := sink.obs[0].Outcome.Result; r != probe.Timeout {
		t.Fatalf("result = %s, want timeout", r)
	}
}

type errAfterCtx struct{}

func (errAfterCtx) Probe(ctx context.Context, _ *probe.Target) probe.Outcome {
	<-ctx.Done()
	return probe.Outcome{Result: probe.Error, Reason: ctx.Err().Error()}
}

func TestHysteresis(t *testing.T) {
	// success, fail, fail (DOWN), fail, success, success (UP)
	seq := []probe.Result{probe.Success, probe.Failure, probe.Failure, probe.Failure, probe.Success, probe.Success}
	cfg := testConfig(1, 40*time.Millisecond, 30*time.Millisecond, nil)
	p := &scriptProber{result: func(_ *probe.Target, n int) probe.Result {
		if n <= len(seq) {
			return seq[n-1]
		}
		return probe.Success
	}}
	sink := &recordSink{}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(),
		Probers: map[string]probe.Prober{"test": p}, Sinks: []probe.Sink{sink}})
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	testenv.Eventually(t, time.Minute, "an observation of every scripted run", func() error {
		if n := sink.len(); n < len(seq) {
			return fmt.Errorf("only %d observations", n)
		}
		return nil
	})
	sink.mu.Lock()
	defer sink.mu.Unlock()
	wantUp := []bool{true, true, false, false, false, true}
	wantTr := []bool{false, false, true, false, false, true}
	for i := range seq {
		if sink.obs[i].Up != wantUp[i] || sink.obs[i].Transition != wantTr[i] {
			t.Errorf("run %d (%s): up=%v transition=%v, want up=%v transition=%v",
				i+1, seq[i], sink.obs[i].Up, sink.obs[i].Transition, wantUp[i], wantTr[i])
		}
	}
}

func TestReloadKeepsUnchangedTargets(t *testing.T) {
	cfg := testConfig(3, 50*time.Millisecond, 40*time.Millisecond, []string{"127.0.0.11", "127.0.0.12"})
	p := &scriptProber{}
	sink := &recordSink{}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(),
		Probers: map[string]probe.Prober{"test": p}, Sinks: []probe.Sink{sink}})
	s.Apply(cfg, paths(t, cfg))
	before := map[string]*probe.Target{}
	for _, tg := range s.Targets() {
		before[tg.Key] = tg
	}
	if len(before) != 6 {
		t.Fatalf("targets = %d, want 6 (3 checks x 2 nodes)", len(before))
	}
	start(t, s)
	testenv.Eventually(t, time.Minute, "every target run once", func() error {
		for k := range before {
			if p.count(k) == 0 {
				return fmt.Errorf("%s has not run", k)
			}
		}
		return nil
	})

	// Same definitions, new objects; c001 changes its URL; c002 is removed.
	cfg2 := testConfig(3, 50*time.Millisecond, 40*time.Millisecond, []string{"127.0.0.11", "127.0.0.12"})
	cfg2.Checks[1].Spec = &httpprobe.Config{URL: "http://127.0.0.1:2/"}
	cfg2.Checks = cfg2.Checks[:2]
	s.Apply(cfg2, paths(t, cfg2))
	after := map[string]*probe.Target{}
	for _, tg := range s.Targets() {
		after[tg.Key] = tg
	}
	if len(after) != 4 {
		t.Fatalf("targets after reload = %d, want 4", len(after))
	}
	for _, k := range []string{"c000/direct/127.0.0.11", "c000/direct/127.0.0.12"} {
		if after[k] != before[k] {
			t.Errorf("%s was replaced although unchanged", k)
		}
	}
	for _, k := range []string{"c001/direct/127.0.0.11"} {
		if after[k] == before[k] {
			t.Errorf("%s kept although its check changed", k)
		}
	}
	sink.mu.Lock()
	forgot := map[string]bool{}
	for _, k := range sink.forgotten {
		forgot[k] = true
	}
	sink.mu.Unlock()
	for _, k := range []string{"c001/direct/127.0.0.11", "c002/direct/127.0.0.12"} {
		if !forgot[k] {
			t.Errorf("%s not forgotten", k)
		}
	}
	if forgot["c000/direct/127.0.0.11"] {
		t.Error("unchanged target forgotten")
	}
}

func TestShardsPartitionTargets(t *testing.T) {
	cfg := testConfig(200, time.Minute, time.Second, []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"})
	seen := map[string]int{}
	for i := 0; i < 3; i++ {
		s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), Shard: probe.Shard{Index: i, Count: 3}})
		s.Apply(cfg, paths(t, cfg))
		n := len(s.Targets())
		if n < 150 || n > 250 {
			t.Errorf("shard %d/3 has %d of 600 targets", i, n)
		}
		for _, tg := range s.Targets() {
			seen[tg.Key]++
		}
	}
	if len(seen) != 600 {
		t.Fatalf("shards cover %d targets, want 600", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s in %d shards", k, n)
		}
	}
}

func TestParseShard(t *testing.T) {
	for _, bad := range []string{"1", "2/2", "-1/2", "a/b", "0/0"} {
		if _, err := probe.ParseShard(bad); err == nil {
			t.Errorf("ParseShard(%q) accepted", bad)
		}
	}
	if s, err := probe.ParseShard("1/4"); err != nil || s.Index != 1 || s.Count != 4 {
		t.Fatalf("ParseShard(1/4) = %v, %v", s, err)
	}
}

// slottedProber allows one run at a time, like a browser with one page.
type slottedProber struct{ scriptProber }

func (*slottedProber) Slots() int { return 1 }

func TestSlotWaitIsNotChargedToTheTimeout(t *testing.T) {
	// Three targets of a one-slot kind, each run 60ms, every 150ms with a
	// 100ms timeout: they need 180ms of the slot per 150ms, so runs must
	// queue, and a slot wait inside the timeout would time them out.
	cfg := testConfig(3, 150*time.Millisecond, 100*time.Millisecond, nil)
	for i := range cfg.Checks {
		cfg.Checks[i].Type = "slotted"
	}
	p := &slottedProber{scriptProber{sleep: 60 * time.Millisecond}}
	sink := &recordSink{}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(),
		Probers: map[string]probe.Prober{"slotted": p}, Sinks: []probe.Sink{sink}})
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	testenv.Eventually(t, time.Minute, "6 runs", func() error {
		if n := sink.len(); n < 6 {
			return fmt.Errorf("only %d runs", n)
		}
		return nil
	})
	if m := p.maxIn.Load(); m != 1 {
		t.Fatalf("max in-flight of a one-slot kind = %d, want 1", m)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, o := range sink.obs {
		if o.Outcome.Result != probe.Success {
			t.Fatalf("%s: %s (%s): waiting for the slot was charged to the run", o.Target.Key, o.Outcome.Result, o.Outcome.Reason)
		}
	}
}

// rebuildSink is a recordSink that keeps a rebuilt target's state.
type rebuildSink struct {
	recordSink
	rebuilt [][2]*probe.Target
}

func (s *rebuildSink) Rebuild(old, nt *probe.Target) {
	s.mu.Lock()
	s.rebuilt = append(s.rebuilt, [2]*probe.Target{old, nt})
	s.mu.Unlock()
}

// TestReloadRebuildsChangedTargets: a check whose definition changes keeps
// its targets' identity: a Rebuilder sink gets Rebuild (not Forget) for
// each, and a target that was DOWN stays down without a transition, rather
// than being reported up by its first failure after the reload.
func TestReloadRebuildsChangedTargets(t *testing.T) {
	cfg := testConfig(1, 40*time.Millisecond, 30*time.Millisecond, []string{"127.0.0.11"})
	p := &scriptProber{result: func(*probe.Target, int) probe.Result { return probe.Failure }}
	sink := &rebuildSink{}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(),
		Probers: map[string]probe.Prober{"test": p}, Sinks: []probe.Sink{sink}})
	s.Apply(cfg, paths(t, cfg))
	old := s.Targets()[0]
	start(t, s)
	obsOf := func(tg *probe.Target) []probe.Observation {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		var out []probe.Observation
		for _, o := range sink.obs {
			if o.Target == tg {
				out = append(out, o)
			}
		}
		return out
	}
	wait := func(tg *probe.Target, n int) []probe.Observation {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := obsOf(tg)
			if len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d observations of %s, want %d", len(got), tg.Key, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := wait(old, 3); got[len(got)-1].Up {
		t.Fatalf("target not down after %d failures", len(got))
	}

	cfg2 := testConfig(1, 40*time.Millisecond, 25*time.Millisecond, []string{"127.0.0.11"})
	s.Apply(cfg2, paths(t, cfg2))
	nt := s.Targets()[0]
	if nt == old || nt.Key != old.Key {
		t.Fatalf("rebuilt target %p %q, old %p %q: want a new target under the same key", nt, nt.Key, old, old.Key)
	}
	for _, o := range wait(nt, 2) {
		if o.Up || o.Transition {
			t.Errorf("after the reload: up=%v transition=%v, want still down, no transition", o.Up, o.Transition)
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.forgotten) != 0 {
		t.Errorf("forgotten %v, want none", sink.forgotten)
	}
	if len(sink.rebuilt) != 1 || sink.rebuilt[0][0] != old || sink.rebuilt[0][1] != nt {
		t.Errorf("rebuilt %v, want old -> new once", sink.rebuilt)
	}
}

// preparingProber needs time of its own before its timeout starts, like
// the browser opening a tab.
type preparingProber struct{ left chan time.Duration }

func (preparingProber) PrepareTimeout() time.Duration { return time.Minute }

func (p preparingProber) Probe(ctx context.Context, _ *probe.Target) probe.Outcome {
	dl, _ := ctx.Deadline()
	p.left <- time.Until(dl)
	return probe.Outcome{Result: probe.Success}
}

func TestPreparerGetsItsPrepareTimeOnTop(t *testing.T) {
	cfg := testConfig(1, time.Minute, 100*time.Millisecond, nil)
	p := preparingProber{left: make(chan time.Duration, 1)}
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), Probers: map[string]probe.Prober{"test": p}})
	s.Apply(cfg, paths(t, cfg))
	tg := s.Targets()[0]
	if out := probe.RunOnce(context.Background(), p, tg); out.Result != probe.Success {
		t.Fatalf("run: %s %s", out.Result, out.Reason)
	}
	// The check's 100ms plus the prober's minute, less what this test
	// took to get there (bounded by the minute, not by machine speed).
	if left := <-p.left; left <= 100*time.Millisecond || left > time.Minute+100*time.Millisecond {
		t.Fatalf("a Preparer's run context lasts %s, want the timeout plus its minute", left)
	}
	if got := probe.RunTimeout(p, tg); got != time.Minute+100*time.Millisecond {
		t.Fatalf("RunTimeout = %s", got)
	}
}

// TestSkippedRunsStartAtZero: every configured check has its
// vantage_scheduler_skipped_runs_total series at 0 before any run is
// skipped, and a check removed by a reload loses it.
func TestSkippedRunsStartAtZero(t *testing.T) {
	cfg := testConfig(3, time.Hour, time.Second, nil)
	reg := prometheus.NewRegistry()
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), Registerer: reg,
		Probers: map[string]probe.Prober{"test": &scriptProber{}}})
	s.Apply(cfg, paths(t, cfg))
	series := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "vantage_scheduler_skipped_runs_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "check" {
						got[l.GetValue()] = m.GetCounter().GetValue()
					}
				}
			}
		}
		return got
	}
	if got := series(); len(got) != 3 || got["c000"] != 0 || got["c001"] != 0 || got["c002"] != 0 {
		t.Fatalf("skipped-runs series after Apply = %v, want c000..c002 at 0", got)
	}
	cfg2 := testConfig(2, time.Hour, time.Second, nil)
	s.Apply(cfg2, paths(t, cfg2))
	if got := series(); len(got) != 2 || got["c000"] != 0 || got["c001"] != 0 {
		t.Fatalf("skipped-runs series after removing c002 = %v, want c000 and c001 at 0", got)
	}
}

// startsProber records when each target's runs start.
type startsProber struct {
	mu     sync.Mutex
	starts map[string][]time.Time
}

func (p *startsProber) Probe(_ context.Context, t *probe.Target) probe.Outcome {
	now := time.Now()
	p.mu.Lock()
	if p.starts == nil {
		p.starts = map[string][]time.Time{}
	}
	p.starts[t.Key] = append(p.starts[t.Key], now)
	p.mu.Unlock()
	return probe.Outcome{Result: probe.Success, Duration: time.Millisecond}
}

// Runs due within a few milliseconds of each other share a wakeup: some
// start before their slot, none more than the coalescing window (5 ms at a
// 1 s interval) before it, none twice for one slot, and no start delay is
// negative.
func TestRunsDueTogetherShareAWakeup(t *testing.T) {
	const iv, window = time.Second, 5 * time.Millisecond
	cfg := testConfig(300, iv, 500*time.Millisecond, nil)
	p := &startsProber{}
	var negative atomic.Int64
	s := probe.NewScheduler(probe.SchedulerOptions{Logger: zerolog.Nop(), Registerer: prometheus.NewRegistry(),
		Probers: map[string]probe.Prober{"test": p},
		Lag: func(d time.Duration) {
			if d < 0 {
				negative.Add(1)
			}
		}})
	s.Apply(cfg, paths(t, cfg))
	start(t, s)
	time.Sleep(2500 * time.Millisecond)
	p.mu.Lock()
	defer p.mu.Unlock()
	early, runs := 0, 0
	for key, starts := range p.starts {
		for i, at := range starts {
			runs++
			// The next slot after a start is either the run's own (it
			// started early) or one interval after it (it started on time
			// or late; half an interval late is far beyond any machine
			// this runs on).
			d := probe.NextSlot(key, iv, at).Sub(at)
			switch {
			case d <= window:
				early++
			case d < iv/2:
				t.Errorf("%s run %d started %v before its slot, more than the %v window", key, i, d, window)
			}
			if i > 0 && at.Sub(starts[i-1]) < iv/2 {
				t.Errorf("%s ran twice within %v", key, at.Sub(starts[i-1]))
			}
		}
	}
	if runs < 300 {
		t.Fatalf("%d runs in 2.5 s of 300 targets at 1 s, want at least 300", runs)
	}
	if early == 0 {
		t.Errorf("none of %d runs started early: runs due together do not share a wakeup", runs)
	}
	if n := negative.Load(); n > 0 {
		t.Errorf("%d runs reported a negative start delay", n)
	}
	t.Logf("%d of %d runs started early", early, runs)
}
