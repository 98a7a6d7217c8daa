package browser

import (
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// Config is a browser check's own keys beyond those still on checks.Check
// (url, steps, screenshot, block_domains).
type Config struct{}

// Traits implements the checks' optional method: each action is its own
// series, and pages report their requests by domain.
func (*Config) Traits() checks.Traits { return checks.Traits{StepSeries: true, Pages: true} }

// Kind is the browser check kind. Options configure its prober; nil
// leaves the prober out (Chromium is not needed to load a config).
type Kind struct{ Options *Options }

// Type implements checks.Kind.
func (Kind) Type() string { return "browser" }

// NewConfig implements checks.Kind.
func (Kind) NewConfig() any { return &Config{} }

// Finish implements checks.Kind; the rules on url, steps, screenshot and
// block_domains still run in package checks.
func (Kind) Finish(*checks.Validator, *checks.Check) {}

// NewProber implements probe.Kind.
func (k Kind) NewProber(log zerolog.Logger) probe.Prober {
	if k.Options == nil {
		return nil
	}
	o := *k.Options
	o.Logger = log
	return New(o)
}
