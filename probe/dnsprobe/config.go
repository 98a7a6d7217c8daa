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

// Expect is a dns check's own expect keys.
type Expect struct {
	// AnswersMin counts the answers of the asked type.
	AnswersMin     int      `yaml:"answers_min"`
	AnswersContain []string `yaml:"answers_contain"`
	// Rcode is a name such as NOERROR or NXDOMAIN, in any case.
	Rcode string `yaml:"rcode"`
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

// NewExpect implements checks.ExpectKind.
func (Kind) NewExpect() any { return &Expect{} }

// Finish implements checks.Kind.
func (Kind) Finish(v *checks.Validator, c *checks.Check) {
	if e := c.Expect; e != nil {
		if x, ok := e.Spec.(*Expect); ok {
			finishExpect(v, e.Pos, x)
		}
		if v.Has(e.Pos, "tls_min_days") {
			// A shared key, accepted since the first release: a dns check
			// never sees a certificate, so it would never fail on one.
			v.Warnf(v.KeyAt(e.Pos, "tls_min_days"), "key \"tls_min_days\" is not used by a dns check and is ignored; "+
				"a dns check makes no TLS connection (an http or tcp check with tls_handshake: true watches a certificate)")
		}
	}
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

func finishExpect(v *checks.Validator, p checks.Pos, e *Expect) {
	if e.Rcode != "" {
		if _, ok := dns.StringToRcode[strings.ToUpper(e.Rcode)]; !ok {
			v.Errorf(v.At(p, "rcode"), "unknown rcode %q", e.Rcode)
		}
	}
	if e.AnswersMin < 0 {
		v.Errorf(v.At(p, "answers_min"), "answers_min must be >= 0")
	}
}

// SchemaDocs implements the schema's optional method of a kind.
func (Kind) SchemaDocs() checks.SchemaDocs {
	return checks.SchemaDocs{
		Types: map[string]string{"Query": "The question of a dns check."},
		Fields: map[string]string{
			"Check.query":            "The DNS question (dns).",
			"Query.type":             "Record type: A, AAAA, CNAME, MX, TXT, NS, SOA, SRV, ...",
			"Query.server":           "DNS server (default: the path's resolver, else the system's).",
			"Expect.answers_min":     "Minimum number of answers of the asked type (dns).",
			"Expect.answers_contain": "Values the answers must contain (dns).",
			"Expect.rcode":           "Expected response code, e.g. NOERROR or NXDOMAIN (dns).",
		},
	}
}

// NewProber implements probe.Kind.
func (Kind) NewProber(log zerolog.Logger) probe.Prober { return New(log) }

// expectOf is the dns assertions of e, none when e has none.
func expectOf(e *checks.Expect) *Expect {
	if e != nil {
		if x, ok := e.Spec.(*Expect); ok {
			return x
		}
	}
	return &Expect{}
}

// query is t's question; nil for a check built without one.
func query(t *probe.Target) *Query {
	if c, ok := t.Check.Spec.(*Config); ok {
		return c.Query
	}
	return nil
}
