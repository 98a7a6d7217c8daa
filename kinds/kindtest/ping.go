// Package kindtest holds a check kind and a notifier type that exist only
// for tests: the proof that a new one is its own package plus one line.
// Nothing outside this package names them; the test adds each to
// kinds.All with one line.
package kindtest

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// PingConfig is a ping check's own keys.
type PingConfig struct {
	// Target is the host:port connected to.
	Target string `yaml:"target"`
	// Count is how many connections a run makes (1-10, default 3).
	Count int `yaml:"count"`
}

// PingExpect is a ping check's own expect keys.
type PingExpect struct {
	// MinOK is how many connections must succeed (1-count; default all).
	MinOK int `yaml:"min_ok"`
}

// PinHost implements the checks' optional method: nodes pin the target's
// host.
func (c *PingConfig) PinHost() string {
	host, _, _ := net.SplitHostPort(c.Target)
	return host
}

// Traits implements the checks' optional method: vantage once shows how
// many connections succeeded.
func (c *PingConfig) Traits() checks.Traits { return checks.Traits{DetailLabel: "pings"} }

// Ping is the ping check kind: connect to target count times.
type Ping struct{}

// Type implements checks.Kind.
func (Ping) Type() string { return "ping" }

// NewConfig implements checks.Kind.
func (Ping) NewConfig() any { return &PingConfig{Count: 3} }

// NewExpect implements checks.ExpectKind.
func (Ping) NewExpect() any { return &PingExpect{} }

// Finish implements checks.Kind.
func (Ping) Finish(v *checks.Validator, c *checks.Check) {
	cfg := c.Spec.(*PingConfig)
	if e := c.Expect; e != nil && v.Has(e.Pos, "min_ok") {
		if n := e.Spec.(*PingExpect).MinOK; n < 1 || n > cfg.Count {
			v.Errorf(v.At(e.Pos, "min_ok"), "min_ok must be between 1 and count (%d)", cfg.Count)
		}
	}
	if !checks.ValidHostPort(cfg.Target) {
		v.Errorf(v.At(c.Pos, "target"), "ping check needs target (host:port)")
	}
	if cfg.Count < 1 || cfg.Count > 10 {
		v.Errorf(v.At(c.Pos, "count"), "count must be between 1 and 10")
	}
}

// SchemaDocs implements the schema's optional method of a kind.
func (Ping) SchemaDocs() checks.SchemaDocs {
	return checks.SchemaDocs{Fields: map[string]string{
		"Check.target":  "host:port to connect to (ping).",
		"Check.count":   "Connections per run, 1-10 (ping; default 3).",
		"Expect.min_ok": "Connections that must succeed, 1-count (ping; default all).",
	}}
}

// NewProber implements probe.Kind.
func (Ping) NewProber(zerolog.Logger) probe.Prober { return pinger{} }

type pinger struct{}

func (pinger) Probe(ctx context.Context, t *probe.Target) probe.Outcome {
	cfg := t.Check.Spec.(*PingConfig)
	start := time.Now()
	ok := 0
	var last error
	for range cfg.Count {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", cfg.Target)
		if err != nil {
			last = err
			continue
		}
		ok++
		conn.Close()
	}
	need := cfg.Count
	if n := expectOf(t.Check).MinOK; n > 0 {
		need = n
	}
	out := probe.Outcome{Start: start, Duration: time.Since(start), Result: probe.Success,
		Detail: fmt.Sprintf("%d/%d connected", ok, cfg.Count)}
	if ok < need {
		out.Result, out.Reason = probe.Failure, last.Error()
	}
	return out
}

// expectOf is c's ping assertions, none when its expect has none.
func expectOf(c *checks.Check) *PingExpect {
	if c.Expect != nil {
		if e, ok := c.Expect.Spec.(*PingExpect); ok {
			return e
		}
	}
	return &PingExpect{}
}
