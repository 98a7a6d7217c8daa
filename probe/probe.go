// Package probe holds what every check kind shares: the Prober interface,
// Target, Outcome and the scheduler that runs targets at stable phases.
// Kinds live in sub-packages and import this one, never the other way.
package probe

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe/netpath"
)

// Result is how a run ended.
type Result string

const (
	Success Result = "success" // every expectation held
	Failure Result = "failure" // an assertion failed
	Error   Result = "error"   // network or browser error
	Timeout Result = "timeout" // the check's timeout ran out
)

// Results lists every Result, for pre-initialising counters.
var Results = []Result{Success, Failure, Error, Timeout}

// Node is one load-balancer node a target is pinned to.
type Node struct {
	Name string     // from config (a named address or node_names), or empty
	Addr netip.Addr // the node's IP
	Port uint16     // 0: the port of the check's URL or address
}

// Label is the `node` label value: the configured name, else the IP.
func (n *Node) Label() string {
	if n == nil {
		return ""
	}
	if n.Name != "" {
		return n.Name
	}
	return n.Addr.String()
}

// Address is the `node_address` value: the node's IP without port, or ""
// when the target has no node.
func (n *Node) Address() string {
	if n == nil {
		return ""
	}
	return n.Addr.String()
}

// DialAddr is where to connect for a URL port defaultPort.
func (n *Node) DialAddr(defaultPort string) string {
	port := defaultPort
	if n.Port != 0 {
		port = strconv.Itoa(int(n.Port))
	}
	return net.JoinHostPort(n.Addr.String(), port)
}

// Target is one (check, path, node) triple: the unit that is scheduled,
// measured and alerted on.
type Target struct {
	Key   string // "check/path/node", stable across restarts
	Check *checks.Check
	Path  *netpath.Path
	Node  *Node // nil when the check has no nodes
	// Redact scrubs secrets from text; never nil once built by the scheduler.
	// Kinds call Scrub, which also serves targets built by hand in tests.
	Redact func(string) string
}

// Scrub returns s with the target's secrets redacted: the one way probers
// and sinks clean a reason or detail before it leaves them.
func (t *Target) Scrub(s string) string {
	if t == nil || t.Redact == nil || s == "" {
		return s
	}
	return t.Redact(s)
}

// Phases are the httptrace phase times of one request. A phase that did not
// happen (DNS for a pinned node, TLS for plain HTTP) is zero and its Has flag
// false.
type Phases struct {
	DNS, Connect, TLS, Processing, Transfer time.Duration
	HasDNS, HasTLS                          bool
}

// NavTiming holds Navigation Timing figures of one browser navigation.
type NavTiming struct {
	TTFB, DOMContentLoaded, Load, LCP time.Duration
}

// StepResult is one step of a run (a single-request check has one step).
type StepResult struct {
	Name       string
	URL        string // redacted
	Result     Result
	Reason     string
	Start      time.Time
	Duration   time.Duration
	StatusCode int
	Phases     Phases
	Navigation *NavTiming // browser navigations only
}

// Request is one network request seen by a browser run.
type Request struct {
	URL      string
	Domain   string
	Method   string
	Status   int
	Result   string // ok | http_error | failed | blocked
	Failure  string
	Start    time.Time
	Duration time.Duration
	Type     string
}

// Outcome is the whole result of one run of one target.
type Outcome struct {
	Result   Result
	Reason   string // the failing assertion or error, redacted; empty on success
	Start    time.Time
	Duration time.Duration
	Steps    []StepResult
	// CertNotAfter is the leaf certificate's expiry; zero when no TLS.
	CertNotAfter time.Time
	// Requests is the browser's request list (nil for other kinds).
	Requests []Request
	// Artifacts are files written for this run (screenshots, waterfalls).
	Artifacts []string
	// Detail is kind-specific extra information for `once` (e.g. DNS answers).
	Detail string
}

// Prober runs one target once. ctx carries the check's timeout as deadline;
// a kind must return when it is done, never block past it.
type Prober interface {
	Probe(ctx context.Context, t *Target) Outcome
}
