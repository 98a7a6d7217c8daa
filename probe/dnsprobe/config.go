package dnsprobe

import (
	"strings"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
)

// Config is a dns check's own keys.
type Config struct {
	Query *Query `yaml:"query"`
}

// Query is the question of a dns check.
type Query struct {
	Name   string     `yaml:"name"`
	Type   string     `yaml:"type"`   // A, AAAA, CNAME, MX, TXT, NS, SOA, SRV, ...
	Server string     `yaml:"server"` // default: the path's resolver, else the system's
	Pos    checks.Pos `yaml:"-"`
}

// PinHost is the query's server: node pinning applies to it.
func (c *Config) PinHost() string {
	if c.Query == nil {
		return ""
	}
	return c.Query.Server
}

// Traits implements the checks' optional method: vantage once shows the
// answers.
func (c *Config) Traits() checks.Traits { return checks.Traits{DetailLabel: "answers"} }

// Kind is the dns check kind.
type Kind struct{}

// Type implements checks.Kind.
func (Kind) Type() string { return "dns" }

// NewConfig implements checks.Kind.
func (Kind) NewConfig() any { return &Config{} }

// Finish implements checks.Kind.
func (Kind) Finish(v *checks.Validator, c *checks.Check) {
	q := c.Spec.(*Config).Query
	if q == nil || q.Name == "" {
		v.Errorf(v.At(c.Pos, "query"), "dns check needs query.name")
		if q == nil {
			return
		}
	}
	qp := q.Pos
	if q.Type == "" {
		q.Type = "A"
	}
	q.Type = strings.ToUpper(q.Type)
	if _, ok := dns.StringToType[q.Type]; !ok {
		v.Errorf(v.At(qp, "type"), "unknown DNS query type %q", q.Type)
	}
	if q.Server != "" {
		if s, ok := checks.NormalizeHostPort(q.Server, "53"); ok {
			q.Server = s
		} else {
			v.Errorf(v.At(qp, "server"), "invalid query server %s (want an IP or host:port)", v.Quote(q.Server, qp, "server"))
		}
	}
}

// SchemaDocs implements the schema's optional method of a kind.
func (Kind) SchemaDocs() checks.SchemaDocs {
	return checks.SchemaDocs{
		Types: map[string]string{"Query": "The question of a dns check."},
		Fields: map[string]string{
			"Check.query":  "The DNS question (dns).",
			"Query.type":   "Record type: A, AAAA, CNAME, MX, TXT, NS, SOA, SRV, ...",
			"Query.server": "DNS server (default: the path's resolver, else the system's).",
		},
	}
}

// NewProber implements probe.Kind.
func (Kind) NewProber(log zerolog.Logger) probe.Prober { return New(log) }

// query is t's question; nil for a check built without one.
func query(t *probe.Target) *Query {
	if c, ok := t.Check.Spec.(*Config); ok {
		return c.Query
	}
	return nil
}
