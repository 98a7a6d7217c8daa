// Package tcpprobe implements the tcp check kind: connect to host:port over
// a path (optionally pinned to a node) and optionally complete a TLS
// handshake. The dialing and TLS helpers it shares with the other kinds
// live in probe/probeutil.
package tcpprobe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// Prober runs tcp checks. Safe for concurrent use.
type Prober struct {
	logger zerolog.Logger
	tls    probeutil.TLSConfigs
	now    func() time.Time
}

// New returns a tcp Prober.
func New(logger zerolog.Logger) *Prober {
	return &Prober{logger: logger, now: time.Now}
}

// phaseTracker remembers the phase in progress for timeout reasons.
type phaseTracker struct {
	mu sync.Mutex
	p  string
}

func (pt *phaseTracker) set(p string) { pt.mu.Lock(); pt.p = p; pt.mu.Unlock() }
func (pt *phaseTracker) get() string  { pt.mu.Lock(); defer pt.mu.Unlock(); return pt.p }

// Probe implements probe.Prober.
func (p *Prober) Probe(ctx context.Context, t *probe.Target) probe.Outcome {
	start := p.now()
	mono := time.Now()
	cfg := configOf(t)
	step := probe.StepResult{URL: cfg.Address, Start: start}
	out := probe.Outcome{Start: start}
	finish := func(r probe.Result, reason string) probe.Outcome {
		step.Duration = time.Since(mono)
		step.Result = r
		step.Reason = t.Scrub(reason)
		out.Result = r
		out.Reason = step.Reason
		out.Duration = step.Duration
		out.Steps = []probe.StepResult{step}
		return out
	}

	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return finish(probe.Error, fmt.Sprintf("invalid address %q: %v", cfg.Address, err))
	}
	var pt phaseTracker
	d := probeutil.Dialer{Path: t.Path, Node: t.Node, PinHost: host, OnPhase: pt.set}
	conn, dt, err := d.Dial(ctx, "tcp", cfg.Address)
	step.Phases.DNS, step.Phases.Connect, step.Phases.HasDNS = dt.DNS, dt.Connect, dt.HasDNS
	if err != nil {
		if probeutil.IsTimeout(ctx, err) {
			return finish(probe.Timeout, probeutil.TimeoutReason(ctx, time.Duration(t.Check.Timeout), mono, pt.get()))
		}
		return finish(probe.Error, err.Error())
	}
	defer conn.Close()

	if cfg.TLSHandshake {
		var pathTLS = t.Path.Config().TLS
		base, err := p.tls.Get(t.Check.TLS, pathTLS)
		if err != nil {
			return finish(probe.Error, err.Error())
		}
		tc := tls.Client(conn, probeutil.ClientTLS(base, host))
		pt.set("tls")
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		tlsStart := time.Now()
		err = tc.HandshakeContext(ctx)
		step.Phases.TLS, step.Phases.HasTLS = time.Since(tlsStart), true
		if err != nil {
			if probeutil.IsTimeout(ctx, err) {
				return finish(probe.Timeout, probeutil.TimeoutReason(ctx, time.Duration(t.Check.Timeout), mono, "tls"))
			}
			return finish(probe.Error, err.Error())
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			out.CertNotAfter = certs[0].NotAfter
		}
	}

	dur := time.Since(mono)
	if e := t.Check.Expect; e != nil {
		if e.MaxDuration > 0 && dur > time.Duration(e.MaxDuration) {
			return finish(probe.Failure, fmt.Sprintf("duration %s exceeds max_duration %s",
				durfmt.Format(dur, durfmt.Setting), e.MaxDuration))
		}
		if e.TLSMinDays > 0 {
			if out.CertNotAfter.IsZero() {
				return finish(probe.Failure, "tls_min_days set but no TLS handshake was made (tls_handshake: false)")
			}
			if r := probeutil.CertReason(out.CertNotAfter, p.now(), e.TLSMinDays); r != "" {
				return finish(probe.Failure, r)
			}
		}
	}
	return finish(probe.Success, "")
}
