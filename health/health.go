// Package health tells when vantage's own measurements are unreliable.
//
// Every latency a probe measures includes the time its goroutines waited
// for a CPU. On a busy host that wait is the noise that once paged a healthy
// node "3.6x slower than its siblings". The monitor measures it directly: a
// timer that should fire every Tick is late by as long as the process could
// not run, and so is any probe that was timing something at that moment.
// The scheduler's start delays (how late runs begin) feed in as well. The
// 99th percentile of those lags over the last minute is the measurement
// lag; when it reaches the threshold (global.node_detection.min_excess: the
// smallest difference the node detector acts on), the daemon's numbers
// cannot tell such a difference from its own noise, and latency and node
// alerts discount it.
package health

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Monitor.
type Options struct {
	// Tick is the timer period (default 100ms).
	Tick time.Duration
	// Window is how far back the lag quantile looks (default 1m).
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Registerer receives vantage_measurement_lag_seconds and
	// vantage_measurement_degraded; nil registers nothing.
	Registerer prometheus.Registerer
}

// Monitor measures the daemon's own scheduling lag. Safe for concurrent use.
type Monitor struct {
	tick, window time.Duration
	now          func() time.Time

	mu        sync.Mutex
	samples   []sample // ascending by time
	threshold time.Duration
	// Lag is asked for by every alert series evaluated and every scrape,
	// hundreds of times a second, while samples change about once a tick:
	// the quantile is kept until they change (ver counts changes).
	ver, lagVer uint64
	lag         time.Duration
	scratch     []time.Duration
}

type sample struct {
	at  time.Time
	lag time.Duration
}

// maxSamples bounds memory whatever feeds Observe: a minute of 100ms ticks
// is 600; start delays of thousands of probes a second are thinned by
// keeping the worst of each tick (see Observe).
const maxSamples = 4096

// New returns a monitor; Run drives its timer.
func New(o Options) *Monitor {
	if o.Tick <= 0 {
		o.Tick = 100 * time.Millisecond
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Monitor{tick: o.Tick, window: o.Window, now: o.Now, threshold: 100 * time.Millisecond}
	if o.Registerer != nil {
		o.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "vantage_measurement_lag_seconds",
				Help: "99th percentile over the last minute of how late vantage's own timers and scheduled runs were: CPU starvation that every measured latency includes.",
			}, func() float64 { return m.Lag().Seconds() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "vantage_measurement_degraded",
				Help: "1 while the measurement lag is at or above global.node_detection.min_excess: latency that the lag explains does not page.",
			}, func() float64 {
				if m.Degraded() {
					return 1
				}
				return 0
			}),
		)
	}
	return m
}

// SetThreshold sets the lag at which measurements count as degraded.
func (m *Monitor) SetThreshold(d time.Duration) {
	m.mu.Lock()
	m.threshold = d
	m.mu.Unlock()
}

// Run measures timer lag every Tick until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	t := time.NewTimer(m.tick)
	defer t.Stop()
	due := time.Now().Add(m.tick)
	for {
		select {
		case <-ctx.Done():
			return
		case fired := <-t.C:
			m.Observe(fired.Sub(due))
			// Measured from when the timer fired: a late tick does not
			// make the next one look late too.
			now := time.Now()
			due = now.Add(m.tick)
			t.Reset(m.tick)
		}
	}
}

// Observe records one lag (a timer's, or a run's start delay).
func (m *Monitor) Observe(lag time.Duration) {
	lag = max(lag, 0)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	// Samples closer together than a tick are folded into one keeping the
	// larger lag: the quantile is over moments, not over how many probes
	// happened to start in one.
	if n := len(m.samples); n > 0 && now.Sub(m.samples[n-1].at) < m.tick {
		if lag > m.samples[n-1].lag {
			m.samples[n-1].lag = lag
			m.ver++
		}
		return
	}
	if len(m.samples) >= maxSamples {
		m.samples = m.samples[1:]
	}
	m.samples = append(m.samples, sample{now, lag})
	m.ver++
}

func (m *Monitor) prune(now time.Time) {
	cut := 0
	for cut < len(m.samples) && now.Sub(m.samples[cut].at) > m.window {
		cut++
	}
	if cut > 0 {
		m.samples = append(m.samples[:0], m.samples[cut:]...)
		m.ver++
	}
}

// Lag is the 99th percentile of the lags observed over the window; 0
// without any.
func (m *Monitor) Lag() time.Duration {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	if m.ver == m.lagVer {
		return m.lag
	}
	lags := m.scratch[:0]
	for _, s := range m.samples {
		lags = append(lags, s.lag)
	}
	m.scratch = lags
	m.lag, m.lagVer = 0, m.ver
	if len(lags) > 0 {
		slices.Sort(lags)
		m.lag = lags[(len(lags)-1)*99/100]
	}
	return m.lag
}

// Degraded reports whether the lag is at or above the threshold.
func (m *Monitor) Degraded() bool {
	m.mu.Lock()
	th := m.threshold
	m.mu.Unlock()
	return th > 0 && m.Lag() >= th
}
