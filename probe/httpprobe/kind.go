package httpprobe

import (
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// Config is an http check's own keys beyond those still on checks.Check
// (url, http, steps and expect, which the http and browser kinds share
// there for now).
type Config struct{}

// Kind is the http check kind.
type Kind struct{}

// Type implements checks.Kind.
func (Kind) Type() string { return "http" }

// NewConfig implements checks.Kind.
func (Kind) NewConfig() any { return &Config{} }

// Finish implements checks.Kind; the rules on url, http and steps still
// run in package checks.
func (Kind) Finish(*checks.Validator, *checks.Check) {}

// NewProber implements probe.Kind.
func (Kind) NewProber(log zerolog.Logger) probe.Prober { return New(log) }
