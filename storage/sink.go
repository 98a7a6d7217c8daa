package storage

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/probe"
)

// Step is the stored (and API) form of one step of a run. Durations are
// seconds, as everywhere in the Prometheus ecosystem.
type Step struct {
	Name       string      `json:"name"`
	URL        string      `json:"url,omitempty"`
	Result     string      `json:"result"`
	Reason     string      `json:"reason,omitempty"`
	Start      time.Time   `json:"start"`
	Duration   float64     `json:"duration_seconds"`
	StatusCode int         `json:"status_code,omitempty"`
	Phases     *Phases     `json:"phases,omitempty"`
	Navigation *Navigation `json:"navigation,omitempty"`
}

// Phases are a request's httptrace phases in seconds; absent phases
// (DNS for a pinned node, TLS for plain HTTP) are omitted.
type Phases struct {
	DNS        *float64 `json:"dns_seconds,omitempty"`
	Connect    float64  `json:"connect_seconds"`
	TLS        *float64 `json:"tls_seconds,omitempty"`
	Processing float64  `json:"processing_seconds"`
	Transfer   float64  `json:"transfer_seconds"`
}

// Navigation holds a browser navigation's timing, in seconds.
type Navigation struct {
	TTFB             float64 `json:"ttfb_seconds"`
	DOMContentLoaded float64 `json:"dom_content_loaded_seconds"`
	Load             float64 `json:"load_seconds"`
	LCP              float64 `json:"lcp_seconds"`
}

// Request is one network request of a browser run (the waterfall).
type Request struct {
	URL      string    `json:"url"`
	Domain   string    `json:"domain,omitempty"`
	Method   string    `json:"method,omitempty"`
	Status   int       `json:"status,omitempty"`
	Result   string    `json:"result,omitempty"` // ok | http_error | failed | blocked
	Failure  string    `json:"failure,omitempty"`
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_seconds"`
	Type     string    `json:"type,omitempty"`
}

// Sink records the runs people look at later and every DOWN/UP transition
// as a timeline event. It never blocks a probe: writes go through the
// store's bounded asynchronous queue, committed in batches.
//
// A run is written to the database when it did not succeed, when it
// changed the target's state (a DOWN/UP transition, whose timeline event
// links to it, or the first success after a failed run), or when it is a
// browser run or has artifacts (steps, waterfall, screenshot). Every other
// run, the successful run of a healthy target that is most of the traffic,
// costs no write: the last Options.MemoryRuns of them per target are kept
// in memory only (RecentRuns merges them in, with ID 0), and they are gone
// on restart or when the target goes away. Nothing links to such a run by
// id: /api/v1/checks and the status page link the latest failed run, and
// timeline events the run that caused them, all of which are stored.
type Sink struct {
	s *Store

	mu        sync.Mutex
	downSince map[string]time.Time // by target key, for "down for 7m" on UP
}

var _ probe.Sink = (*Sink)(nil)

// Sink returns a probe.Sink writing to s.
func (s *Store) Sink() *Sink { return &Sink{s: s, downSince: map[string]time.Time{}} }

// Observe implements probe.Sink.
func (k *Sink) Observe(o *probe.Observation) {
	t, out := o.Target, o.Outcome
	if t == nil || out == nil {
		return
	}
	success := out.Result == probe.Success
	browser := t.Check != nil && t.Check.Traits().Pages
	plain := success && !o.Transition && !browser && len(out.Artifacts) == 0 && len(out.Requests) == 0
	start := out.Start
	if start.IsZero() {
		start = k.s.now()
	}
	if !k.s.mem.observe(t, success, plain, start, out.Duration) {
		return
	}
	clean := func(s string) string { return t.Scrub(StripURLCredentials(s)) }
	r := Run{
		TargetKey: t.Key, Start: out.Start, Duration: out.Duration,
		Result: string(out.Result), Reason: clean(out.Reason),
	}
	r.Check, r.Path, r.Node = placeOf(t)
	if r.Start.IsZero() {
		r.Start = k.s.now()
	}
	if len(out.Steps) > 0 {
		steps := make([]Step, len(out.Steps))
		for i := range out.Steps {
			steps[i] = stepJSON(&out.Steps[i], clean)
		}
		r.Steps, _ = json.Marshal(steps)
	}
	if len(out.Requests) > 0 {
		reqs := make([]Request, len(out.Requests))
		for i, q := range out.Requests {
			reqs[i] = Request{URL: clean(q.URL), Domain: q.Domain, Method: q.Method, Status: q.Status,
				Result: q.Result, Failure: clean(q.Failure), Start: q.Start, Duration: q.Duration.Seconds(), Type: q.Type}
		}
		r.Requests, _ = json.Marshal(reqs)
	}
	for _, a := range out.Artifacts {
		r.Artifacts = append(r.Artifacts, k.s.relArtifact(a))
	}

	var ev *Event
	if o.Transition {
		ev = &Event{Time: out.Start.Add(out.Duration), TargetKey: t.Key, Check: r.Check, Path: r.Path, Node: r.Node}
		if ev.Time.IsZero() || out.Start.IsZero() {
			ev.Time = k.s.now()
		}
		k.mu.Lock()
		if o.Up {
			ev.Kind = TargetUp
			if since, ok := k.downSince[t.Key]; ok {
				ev.Detail = "down for " + durfmt.Format(ev.Time.Sub(since), durfmt.Stored)
				delete(k.downSince, t.Key)
			}
		} else {
			ev.Kind = TargetDown
			ev.Detail = r.Reason
			if ev.Detail == "" {
				ev.Detail = r.Result
			}
			k.downSince[t.Key] = ev.Time
		}
		k.mu.Unlock()
	}
	k.s.RecordRunAsync(r, ev)
}

// Rebuild implements probe.Rebuilder: a target rebuilt by a reload under
// the same key is still down since the same time, and keeps its recent runs
// (now under the new target's labels).
func (k *Sink) Rebuild(_, nt *probe.Target) { k.s.mem.rebuild(nt) }

// Forget implements probe.Sink: stored runs stay (they are history).
func (k *Sink) Forget(t *probe.Target) {
	k.mu.Lock()
	delete(k.downSince, t.Key)
	k.mu.Unlock()
	// The runs kept in memory only go with the target.
	k.s.mem.forget(t.Key)
}

func placeOf(t *probe.Target) (check, path, node string) {
	if t.Check != nil {
		check = t.Check.Name
	}
	if t.Path != nil {
		path = t.Path.Name()
	}
	return check, path, t.Node.Label()
}

func stepJSON(s *probe.StepResult, clean func(string) string) Step {
	out := Step{Name: s.Name, URL: clean(s.URL), Result: string(s.Result), Reason: clean(s.Reason),
		Start: s.Start, Duration: s.Duration.Seconds(), StatusCode: s.StatusCode}
	p := s.Phases
	if p != (probe.Phases{}) {
		ph := &Phases{Connect: p.Connect.Seconds(), Processing: p.Processing.Seconds(), Transfer: p.Transfer.Seconds()}
		if p.HasDNS {
			v := p.DNS.Seconds()
			ph.DNS = &v
		}
		if p.HasTLS {
			v := p.TLS.Seconds()
			ph.TLS = &v
		}
		out.Phases = ph
	}
	if n := s.Navigation; n != nil {
		out.Navigation = &Navigation{TTFB: n.TTFB.Seconds(), DOMContentLoaded: n.DOMContentLoaded.Seconds(),
			Load: n.Load.Seconds(), LCP: n.LCP.Seconds()}
	}
	return out
}

// relArtifact stores paths inside the storage directory relative to it, so
// the directory can be moved.
func (s *Store) relArtifact(p string) string {
	if filepath.IsAbs(p) {
		if rel, err := filepath.Rel(s.dir, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}

// StripURLCredentials removes user:password@ from every URL in s (a URL
// alone or inside an error message), so stored text never carries them.
func StripURLCredentials(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "://")
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i+3])
		rest = rest[i+3:]
		// The authority ends at the first '/', '?', '#' or whitespace.
		end := strings.IndexAny(rest, "/?# \t\n\"'")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			rest = rest[at+1:]
		}
	}
}
