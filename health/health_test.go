package health

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vantage-monitoring/vantage/internal/testenv"
)

func TestLagIsP99OverTheWindow(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1_800_000_000, 0))
	reg := prometheus.NewRegistry()
	m := New(Options{Now: clk.Now, Registerer: reg})
	m.SetThreshold(100 * time.Millisecond)
	if m.Lag() != 0 || m.Degraded() {
		t.Fatal("lag without samples")
	}
	// 200 quiet ticks and one 2 s stall: p99 stays quiet.
	for i := range 200 {
		lag := time.Millisecond
		if i == 50 {
			lag = 2 * time.Second
		}
		m.Observe(lag)
		clk.Add(100 * time.Millisecond)
	}
	if got := m.Lag(); got != time.Millisecond {
		t.Errorf("one stall in 200 ticks: lag %s, want 1ms", got)
	}
	// A starved stretch: every tenth tick 300 ms late.
	for i := range 300 {
		lag := 5 * time.Millisecond
		if i%10 == 0 {
			lag = 300 * time.Millisecond
		}
		m.Observe(lag)
		clk.Add(100 * time.Millisecond)
	}
	if got := m.Lag(); got != 300*time.Millisecond || !m.Degraded() {
		t.Errorf("starved: lag %s degraded %v, want 300ms and degraded", got, m.Degraded())
	}
	if v := gauge(t, reg, "vantage_measurement_degraded"); v != 1 {
		t.Errorf("vantage_measurement_degraded = %v", v)
	}
	// A minute later it is all gone.
	clk.Add(61 * time.Second)
	if m.Lag() != 0 || m.Degraded() {
		t.Errorf("samples older than the window still count: %s", m.Lag())
	}
}

// TestObserveFoldsWithinATick: thousands of run start delays in one tick
// are one moment, holding the worst lag, so memory stays bounded.
func TestObserveFoldsWithinATick(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1_800_000_000, 0))
	m := New(Options{Now: clk.Now})
	for i := range 10000 {
		m.Observe(time.Duration(i%7) * time.Millisecond)
	}
	if len(m.samples) != 1 || m.samples[0].lag != 6*time.Millisecond {
		t.Fatalf("samples %v, want one of 6ms", m.samples)
	}
	for range 2 * maxSamples {
		clk.Add(time.Microsecond * 100)
		m.tick = 0 // no folding: the cap must hold on its own
		m.Observe(time.Millisecond)
	}
	if len(m.samples) > maxSamples {
		t.Fatalf("%d samples, cap %d", len(m.samples), maxSamples)
	}
}

func TestRunMeasuresTimers(t *testing.T) {
	m := New(Options{Tick: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m.mu.Lock()
		n := len(m.samples)
		m.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d timer samples after 30s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// TestLagKeptUntilSamplesChange: Lag is asked for per alert series; it is
// recomputed only when a sample changes, and then sees the change.
func TestLagKeptUntilSamplesChange(t *testing.T) {
	clk := testenv.NewClock(time.Unix(1_800_000_000, 0))
	m := New(Options{Now: clk.Now})
	for range 100 {
		m.Observe(time.Millisecond)
		clk.Add(100 * time.Millisecond)
	}
	if got := m.Lag(); got != time.Millisecond {
		t.Fatalf("lag %s, want 1ms", got)
	}
	if a := testing.AllocsPerRun(100, func() { m.Lag() }); a != 0 {
		t.Errorf("Lag with unchanged samples allocates %v times", a)
	}
	// A worse lag folded into the newest moment, then a new moment: both
	// count at once (2 of 102 samples puts them above the p99 rank).
	clk.Add(-50 * time.Millisecond)
	m.Observe(time.Second)
	clk.Add(100 * time.Millisecond)
	m.Observe(time.Second)
	if got := m.Lag(); got != time.Second {
		t.Errorf("after two 1s lags: %s, want 1s", got)
	}
}
