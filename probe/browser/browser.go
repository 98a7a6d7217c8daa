// Package browser is the `type: browser` check kind: scripted journeys in a
// real headless Chromium driven over the DevTools protocol (chromedp).
//
// One long-lived Chromium per Prober, started on first use; each run gets a
// fresh incognito browser context whose traffic goes through an in-process
// forward proxy bound to the target's path and node, so node pinning, source
// address, resolver and upstream proxy mean the same as for the http kind.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// DefaultExecPath is Debian's Chromium.
const DefaultExecPath = "/usr/bin/chromium"

// Options configure a Prober.
type Options struct {
	// ExecPath is the Chromium binary (DefaultExecPath when empty).
	ExecPath string
	// MaxConcurrent bounds simultaneous runs (default 2).
	MaxConcurrent int
	// StorageDir is --storage.path; artifacts go under StorageDir/artifacts.
	// Empty: no artifacts are written.
	StorageDir string
	// KeepArtifacts is how many runs' artifacts are kept per target
	// (default 20).
	KeepArtifacts int
	// NoSandbox turns Chromium's sandbox off for a non-root user too (it is
	// always off as root, where Chromium cannot run it).
	NoSandbox bool
	// StartTimeout bounds a Chromium start (default 30s).
	StartTimeout time.Duration
	Logger       zerolog.Logger
	// Now is the wall clock (default time.Now).
	Now func() time.Time
}

// Prober runs browser checks. Safe for concurrent use.
type Prober struct {
	opts Options
	log  zerolog.Logger
	now  func() time.Time
	sem  chan struct{}
	tls  probeutil.TLSConfigs

	mu        sync.Mutex
	inst      *instance
	startErr  error
	lastStart time.Time
	restarts  int
	closed    bool
	artMu     sync.Mutex // serialises artifact retention per Prober
}

// New returns a Prober; Chromium starts on the first run.
func New(o Options) *Prober {
	if o.ExecPath == "" {
		o.ExecPath = DefaultExecPath
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 2
	}
	if o.KeepArtifacts <= 0 {
		o.KeepArtifacts = 20
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Prober{opts: o, log: o.Logger, now: o.Now, sem: make(chan struct{}, o.MaxConcurrent)}
}

// retryStartAfter spaces out start attempts of a Chromium that fails to
// start, so every run does not pay for a doomed launch.
const retryStartAfter = 10 * time.Second

// Ready reports whether browser checks can run: false with the reason when
// Chromium is missing or its last start failed.
func (p *Prober) Ready() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst != nil {
		return true, ""
	}
	if p.startErr != nil {
		return false, p.startErr.Error()
	}
	if _, err := os.Stat(p.opts.ExecPath); err != nil {
		return false, fmt.Sprintf("chromium not found at %s", p.opts.ExecPath)
	}
	return true, ""
}

// Restarts is how many times a crashed or hung browser was replaced.
func (p *Prober) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// BrowserPID is the running Chromium's process id (0 when none).
func (p *Prober) BrowserPID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inst == nil {
		return 0
	}
	return p.inst.pid
}

// BrowserPSS is the proportional set size of every Chromium process of this
// Prober, in bytes.
func (p *Prober) BrowserPSS() int64 {
	p.mu.Lock()
	inst := p.inst
	p.mu.Unlock()
	if inst == nil {
		return 0
	}
	return inst.pss()
}

// Close stops Chromium. Runs in flight end with an error.
func (p *Prober) Close() error {
	p.mu.Lock()
	inst := p.inst
	p.inst = nil
	p.closed = true
	p.mu.Unlock()
	if inst != nil {
		inst.close()
	}
	return nil
}

// browser returns a healthy Chromium, starting or restarting it as needed.
func (p *Prober) browser() (*instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("browser prober closed")
	}
	if p.inst != nil {
		err := p.inst.healthy(healthTimeout)
		if err == nil {
			return p.inst, nil
		}
		p.log.Warn().Err(err).Int("pid", p.inst.pid).Msg("chromium unhealthy, restarting")
		p.inst.close()
		p.inst = nil
		p.restarts++
	}
	if p.startErr != nil && time.Since(p.lastStart) < retryStartAfter {
		return nil, p.startErr
	}
	p.lastStart = time.Now()
	inst, err := launch(p.opts.ExecPath, p.opts.StartTimeout, p.opts.NoSandbox)
	if err != nil {
		p.startErr = err
		p.log.Error().Err(err).Msg("chromium failed to start; browser checks report error")
		return nil, err
	}
	if p.startErr != nil {
		p.log.Info().Msg("chromium started after earlier failures")
	}
	p.startErr = nil
	p.inst = inst
	p.log.Debug().Int("pid", inst.pid).Msg("chromium started")
	return inst, nil
}

// discard replaces inst after a crash seen mid-run (if still current).
func (p *Prober) discard(inst *instance, why string) {
	p.mu.Lock()
	if p.inst != inst {
		p.mu.Unlock()
		return
	}
	p.inst = nil
	p.restarts++
	p.mu.Unlock()
	p.log.Warn().Int("pid", inst.pid).Str("reason", why).Msg("chromium lost, will restart")
	inst.close()
}

// Slots is --browser.max-concurrent: the scheduler queues runs for a slot
// before their timeout starts (probe.Slotted).
func (p *Prober) Slots() int { return cap(p.sem) }

// Probe implements probe.Prober.
func (p *Prober) Probe(ctx context.Context, t *probe.Target) probe.Outcome {
	out := p.probeOnce(ctx, t, time.Now())
	if out.Result == probe.Success || !networkChanged(&out) {
		return out
	}
	// Chromium aborts every request in flight when any interface or
	// address on the host changes (a container starting, a VPN, DHCP):
	// that says nothing about the target. Run the journey once more if
	// the timeout leaves room for a run as long as this one.
	// ctx allows PrepareTimeout on top of the check's timeout (see
	// probe.Preparer); the room for a second run is the check's.
	deadline, ok := ctx.Deadline()
	deadline = deadline.Add(-p.PrepareTimeout())
	if ok && time.Until(deadline) < out.Duration+netSettle+time.Second {
		out.Result = probe.Error
		out.Reason = t.Scrub(netChangedReason + "; no time left to run again: " + out.Reason)
		return out
	}
	p.log.Info().Str("target", t.Key).Str("reason", out.Reason).
		Msg("host network changed during a browser run (net::ERR_NETWORK_CHANGED); running it again")
	// Chromium reports one change as several notifications spread over a
	// second or two (address, then connection type): let them pass.
	select {
	case <-time.After(netSettle):
	case <-ctx.Done():
	}
	again := p.probeOnce(ctx, t, time.Now())
	if again.Result != probe.Success && networkChanged(&again) {
		again.Result = probe.Error
		again.Reason = t.Scrub(netChangedReason + " twice: " + again.Reason)
	}
	// again keeps its own start and duration: the journey's latency is the
	// second run's, not the pause and the aborted attempt.
	again.Detail = "ran twice: the first run was cut by net::ERR_NETWORK_CHANGED (" + out.Reason + ")\n" + again.Detail
	return again
}

// netSettle is the pause before running a journey again after a network
// change.
const netSettle = 2 * time.Second

const netChangedReason = "the host's network changed during the run (net::ERR_NETWORK_CHANGED)"

// networkChanged reports whether Chromium aborted part of the run because
// the host's network configuration changed.
func networkChanged(out *probe.Outcome) bool {
	const code = "ERR_NETWORK_CHANGED"
	if strings.Contains(out.Reason, code) {
		return true
	}
	for i := range out.Requests {
		if strings.Contains(out.Requests[i].Failure, code) {
			return true
		}
	}
	return false
}

func (p *Prober) probeOnce(ctx context.Context, t *probe.Target, mono time.Time) probe.Outcome {
	out := probe.Outcome{Start: p.now()}
	fail := func(res probe.Result, reason string) probe.Outcome {
		out.Result, out.Reason = res, t.Scrub(reason)
		out.Duration = time.Since(mono)
		return out
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return fail(probe.Timeout, "timed out waiting for a free browser slot (--browser.max-concurrent)")
	}
	released := false
	release := func() { <-p.sem }
	defer func() {
		if !released {
			release()
		}
	}()

	pl, err := plan(t.Check)
	if err != nil {
		return fail(probe.Error, "invalid check: "+err.Error())
	}
	base, err := p.tls.Get(t.Check.TLS, t.Path.Config().TLS)
	if err != nil {
		return fail(probe.Error, err.Error())
	}
	inst, err := p.browser()
	if err != nil {
		return fail(probe.Error, "browser: "+err.Error())
	}
	r := &run{p: p, t: t, pl: pl, inst: inst, tlsBase: base}
	released = true // exec releases the slot once the page is closed
	r.exec(ctx, &out, mono, release)
	return out
}

// PrepareTimeout implements probe.Preparer: checking or starting Chromium
// and opening the run's tab are bounded on their own, and the check's
// timeout starts once the tab is open.
func (p *Prober) PrepareTimeout() time.Duration {
	return healthTimeout + p.opts.StartTimeout + tabOpenTimeout
}

// healthTimeout bounds asking the browser for its version before a run.
const healthTimeout = 3 * time.Second
