package tcpprobe

import (
	"strings"

	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// Config is a tcp check's own keys.
type Config struct {
	Address      string `yaml:"address"` // host:port
	TLSHandshake bool   `yaml:"tls_handshake"`
}

// PinHost is the address's host: node pinning applies to it.
func (c *Config) PinHost() string {
	host := c.Address
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// Kind is the tcp check kind.
type Kind struct{}

// Type implements checks.Kind.
func (Kind) Type() string { return "tcp" }

// NewConfig implements checks.Kind.
func (Kind) NewConfig() any { return &Config{} }

// Finish implements checks.Kind.
func (Kind) Finish(v *checks.Validator, c *checks.Check) {
	cfg, p := c.Spec.(*Config), c.Pos
	switch {
	case cfg.Address == "":
		v.Errorf(p, "tcp check needs address (host:port)")
	case !checks.ValidHostPort(cfg.Address):
		v.Errorf(v.At(p, "address"), "invalid address %s (want host:port)", v.Quote(cfg.Address, p, "address"))
	}
}

// SchemaDocs implements the schema's optional method of a kind.
func (Kind) SchemaDocs() checks.SchemaDocs {
	return checks.SchemaDocs{Fields: map[string]string{
		"Check.address":       "host:port to connect to (tcp).",
		"Check.tls_handshake": "Also complete a TLS handshake (tcp).",
	}}
}

// NewProber implements probe.Kind.
func (Kind) NewProber(log zerolog.Logger) probe.Prober { return New(log) }

// configOf is t's tcp config; a check built without one has none.
func configOf(t *probe.Target) *Config {
	if c, ok := t.Check.Spec.(*Config); ok {
		return c
	}
	return &Config{}
}
