// Package probeutil holds what every connection-based check kind shares:
// the dialer that follows a target's path and node pin, timeout reasons,
// and the TLS settings cache and certificate checks.
package probeutil

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/config"

	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/internal/ptrcache"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// DialTiming is what opening one connection cost.
type DialTiming struct {
	DNS, Connect time.Duration
	// HasDNS is false when no lookup happened: the host is pinned to a node,
	// is an IP literal, or the path's proxy resolves it.
	HasDNS bool
}

// Dialer opens connections the way every TCP-based check kind does: through
// the target's path, with connections to the pin host sent to the pinned
// node, and with the DNS lookup timed separately from the connect.
type Dialer struct {
	Path *netpath.Path
	// Node, when set, receives every connection to PinHost.
	Node    *probe.Node
	PinHost string
	// OnPhase, when set, is told "dns" and "connect" as each starts, so a
	// timeout can name the phase it interrupted.
	OnPhase func(phase string)
}

// Dial connects to address (host:port).
func (d *Dialer) Dial(ctx context.Context, network, address string) (net.Conn, DialTiming, error) {
	var dt DialTiming
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, dt, err
	}
	if d.Node != nil && strings.EqualFold(host, d.PinHost) {
		return d.connect(ctx, network, []string{d.Node.DialAddr(port)}, &dt)
	}
	if _, err := netip.ParseAddr(host); err == nil || d.Path.HasProxy() {
		return d.connect(ctx, network, []string{address}, &dt)
	}
	d.phase("dns")
	start := time.Now()
	addrs, err := d.Path.Resolve(ctx, host)
	dt.DNS = time.Since(start)
	dt.HasDNS = true
	if err != nil {
		return nil, dt, err
	}
	if len(addrs) == 0 {
		return nil, dt, fmt.Errorf("lookup %s: no addresses", host)
	}
	targets := make([]string, len(addrs))
	for i, a := range addrs {
		targets[i] = net.JoinHostPort(a.String(), port)
	}
	return d.connect(ctx, network, targets, &dt)
}

// connect tries each address in turn, as a client without happy eyeballs
// would; Connect covers all attempts.
func (d *Dialer) connect(ctx context.Context, network string, addrs []string, dt *DialTiming) (net.Conn, DialTiming, error) {
	d.phase("connect")
	start := time.Now()
	var errs []error
	for _, a := range addrs {
		c, err := d.Path.DialContext(ctx, network, a)
		if err == nil {
			dt.Connect = time.Since(start)
			return c, *dt, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	dt.Connect = time.Since(start)
	return nil, *dt, errors.Join(errs...)
}

func (d *Dialer) phase(p string) {
	if d.OnPhase != nil {
		d.OnPhase(p)
	}
}

// TLSConfigs builds and caches tls.Configs from config.TLSConfig settings,
// so CA files are read once per loaded configuration rather than per run.
// Entries go away with the config they were built from. The zero value is
// ready to use.
type TLSConfigs struct {
	m ptrcache.Cache[config.TLSConfig, *tls.Config]
}

// Get returns the client TLS settings for a target: the check's own tls
// block wins over the path's. The result is shared: Clone it before use.
// It is nil when neither is set.
func (c *TLSConfigs) Get(checkTLS, pathTLS *config.TLSConfig) (*tls.Config, error) {
	cfg := checkTLS
	if cfg == nil {
		cfg = pathTLS
	}
	if cfg == nil {
		return nil, nil
	}
	if tc, ok := c.m.Get(cfg); ok {
		return tc, nil
	}
	// Errors are not cached: a missing CA file may appear later.
	tc, err := config.NewTLSConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("tls config: %w", err)
	}
	return c.m.Put(cfg, tc), nil
}

// ClientTLS returns a fresh tls.Config for host: a clone of base (or a
// default one) with ServerName defaulting to host.
func ClientTLS(base *tls.Config, host string) *tls.Config {
	var tc *tls.Config
	if base != nil {
		tc = base.Clone()
	} else {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return tc
}

// CertDaysLeft is how many whole days remain until notAfter.
func CertDaysLeft(notAfter, now time.Time) int {
	return int(notAfter.Sub(now) / (24 * time.Hour))
}

// CertReason is the failing tls_min_days assertion for a certificate
// expiring at notAfter, or "" when it holds.
func CertReason(notAfter, now time.Time, minDays int) string {
	days := CertDaysLeft(notAfter, now)
	switch {
	case days >= minDays:
		return ""
	case notAfter.Before(now):
		ago := now.Sub(notAfter)
		if ago >= 24*time.Hour {
			return fmt.Sprintf("certificate expired %d days ago, expected at least %d days left", int(ago/(24*time.Hour)), minDays)
		}
		return fmt.Sprintf("certificate expired %s ago, expected at least %d days left", ago.Round(time.Minute), minDays)
	default:
		return fmt.Sprintf("certificate expires in %d days, expected at least %d", days, minDays)
	}
}

// TimeoutReason names the deadline that ran out and, when known, the phase
// it interrupted: "timeout after 5s during tls". configured is the check's
// timeout; without one, the time from start to ctx's deadline is shown
// (a little less than the timeout: the run starts after its context).
func TimeoutReason(ctx context.Context, configured time.Duration, start time.Time, phase string) string {
	s := "timeout"
	if configured > 0 {
		s += " after " + durfmt.Format(configured, durfmt.Setting)
	} else if dl, ok := ctx.Deadline(); ok {
		s += " after " + durfmt.Format(dl.Sub(start), durfmt.Setting)
	}
	if phase != "" {
		s += " during " + phase
	}
	return s
}

// IsTimeout reports whether err (or ctx) says the check's deadline passed.
func IsTimeout(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	if err == nil {
		return false
	}
	// Connection deadlines are set from ctx, so an I/O timeout is ctx's too.
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}
