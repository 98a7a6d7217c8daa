package timeline

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-monitoring/vantage/storage"
)

// pendingHold is how long a pending alert keeps its cause's incident open
// while waiting to fire: the store records no event when a pending alert
// clears without firing, so without a bound one healthy-period pending
// would swallow every later episode of its cause.
func pendingHold(gap time.Duration) time.Duration { return 3 * gap }

// Incident is one episode of one cause: a node (by name), a third-party
// domain, a check via a path, or an alert with no place, from its first
// sign to its last resolve.
type Incident struct {
	// ID is stable for the same events: the UTC start time and the cause.
	ID string `json:"id"`
	// CauseKind is node, domain, check or alert; Cause names it.
	CauseKind string `json:"cause_kind"`
	Cause     string `json:"cause"`
	// What is the cause in words ("node lb2").
	What string `json:"what"`
	// Paged is true when an alert fired (or resolved, having fired before
	// the range); other episodes are noise that
	// never paged (a pending alert that never fired, a DOWN/UP alone).
	Paged    bool       `json:"paged"`
	Start    time.Time  `json:"start"`
	Detected *time.Time `json:"detected,omitempty"`
	Notified *time.Time `json:"notified,omitempty"`
	// Resolved is the last resolve (alert resolved, target UP); nil while
	// the incident is still open at the end of the range.
	Resolved        *time.Time `json:"resolved,omitempty"`
	DurationSeconds float64    `json:"duration_seconds"`
	// Checks lists the checks with their paths ("shop-home via direct, alt").
	Checks []string `json:"checks,omitempty"`
	Alerts []string `json:"alerts,omitempty"`
	// Worst lists the worst value seen per measure ("p99 = 2.1s").
	Worst    []string `json:"worst,omitempty"`
	EventIDs []int64  `json:"event_ids"`

	events      []storage.Event
	firstSign   storage.Event
	detectedBy  storage.Event
	notifiers   []string
	notifyFails int
	downs       int
	last        time.Time
	lastResolve time.Time
	active      map[string]time.Time // open alert/target → hold expiry (zero: until closed)
	alertKeys   map[string]bool
}

// Events are the incident's events in time order, including daemon and
// config events that happened while it was open.
func (in *Incident) Events() []storage.Event { return in.events }

func (in *Incident) open(t time.Time) bool {
	for _, exp := range in.active {
		if exp.IsZero() || exp.After(t) {
			return true
		}
	}
	return false
}

// ongoing reports whether a firing alert or a DOWN target is still open.
func (in *Incident) ongoing() bool {
	for _, exp := range in.active {
		if exp.IsZero() {
			return true
		}
	}
	return false
}

type cause struct{ kind, name string }

// foldedNode returns the node of the node alert a "(folded into KEY)"
// detail names; alert keys are rule|label=value|….
func foldedNode(detail string) string {
	_, rest, ok := strings.Cut(detail, "(folded into ")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, ")")
	for _, part := range strings.Split(key, "|") {
		if v, ok := strings.CutPrefix(part, "node="); ok {
			return v
		}
	}
	return ""
}

// readableFolded rewrites "(folded into Rule|node=lb2|…)" in a detail as
// "(folded into Rule, lb2, …)".
func readableFolded(detail string) string {
	before, rest, ok := strings.Cut(detail, "(folded into ")
	if !ok {
		return detail
	}
	key, after, _ := strings.Cut(rest, ")")
	parts := strings.Split(key, "|")
	for i := 1; i < len(parts); i++ {
		if _, v, ok := strings.Cut(parts[i], "="); ok {
			parts[i] = v
		}
	}
	return before + "(folded into " + strings.Join(parts, ", ") + ")" + after
}

// causeOf places an event: a per-check alert folded into a node alert
// belongs to the node; a domain comes before the node it was seen from,
// since a failing third party is not the node's fault.
func causeOf(e *storage.Event) cause {
	if n := foldedNode(e.Detail); n != "" {
		return cause{"node", n}
	}
	switch {
	case e.Domain != "":
		return cause{"domain", e.Domain}
	case e.Node != "":
		return cause{"node", e.Node}
	case e.Check != "":
		name := e.Check
		if e.Path != "" {
			name += " via " + e.Path
		}
		return cause{"check", name}
	case e.Alert != "":
		return cause{"alert", e.Alert}
	}
	return cause{}
}

// domainBlame puts a target's DOWN with a failing domain's incident when
// its reason names that domain: a browser journey on lb2 that fails because
// the CDN refuses is the CDN's incident, not lb2's, whatever node the
// journey was pinned to. The target's UP (or removal) follows its DOWN.
type domainBlame struct {
	gap   time.Duration
	spans map[string][2]time.Time // domain → first and last event naming it
	names []string                // the domains, longest first
	downs map[string]string       // target key → domain its open DOWN went to
}

func newDomainBlame(evs []storage.Event, gap time.Duration) *domainBlame {
	b := &domainBlame{gap: gap, spans: map[string][2]time.Time{}, downs: map[string]string{}}
	for _, e := range evs {
		if e.Domain == "" {
			continue
		}
		sp, ok := b.spans[e.Domain]
		if !ok {
			sp[0] = e.Time
			b.names = append(b.names, e.Domain)
		}
		sp[1] = e.Time
		b.spans[e.Domain] = sp
	}
	// Longest first, so cdn.shop.test wins over shop.test in a reason
	// naming the former.
	sort.Slice(b.names, func(i, j int) bool {
		if len(b.names[i]) != len(b.names[j]) {
			return len(b.names[i]) > len(b.names[j])
		}
		return b.names[i] < b.names[j]
	})
	return b
}

// domain is the failing domain e belongs to, or "".
func (b *domainBlame) domain(e *storage.Event) string {
	if e.Domain != "" || e.TargetKey == "" {
		return ""
	}
	switch e.Kind {
	case storage.TargetUp, storage.NodeRemoved:
		d := b.downs[e.TargetKey]
		delete(b.downs, e.TargetKey)
		return d
	case storage.TargetDown:
		delete(b.downs, e.TargetKey)
		for _, d := range b.names {
			sp := b.spans[d]
			if e.Time.Before(sp[0].Add(-b.gap)) || e.Time.After(sp[1].Add(b.gap)) || !namesDomain(e.Detail, d) {
				continue
			}
			b.downs[e.TargetKey] = d
			return d
		}
	}
	return ""
}

// namesDomain reports whether text holds d as a whole host name, not as
// the tail of a longer one.
func namesDomain(text, d string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], d)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(d)
		if (start == 0 || !hostByte(text[start-1])) && (end == len(text) || !hostByte(text[end]) || text[end] == '.' && (end+1 == len(text) || !hostByte(text[end+1]))) {
			return true
		}
		i = start + 1
	}
}

func hostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
}

func alertKey(e *storage.Event) string {
	return e.Alert + "\x00" + e.Check + "\x00" + e.Path + "\x00" + e.Node
}

func isContext(k storage.Kind) bool {
	switch k {
	case storage.DaemonStart, storage.DaemonStop, storage.ConfigReload, storage.ConfigReloadFailed:
		return true
	}
	return false
}

func isNotification(k storage.Kind) bool {
	return k == storage.NotificationSent || k == storage.NotificationFailed || k == storage.NotificationDropped
}

// Incidents groups events into incidents, in order of their start, and
// returns the daemon and config events that fall in no paged incident.
// An incident of a cause stays open while one of its alerts fires (or is
// pending, for a while), or one of its targets is DOWN; once all have
// resolved, the next event of that cause at least gap later starts a new
// incident. Notifications belong to the incident of their alert. until
// ends incidents still open.
func Incidents(events []storage.Event, until time.Time, gap time.Duration) ([]*Incident, []storage.Event) {
	if gap <= 0 {
		gap = DefaultGap
	}
	evs := append([]storage.Event(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })

	var all []*Incident
	current := map[cause]*Incident{}
	byAlert := map[string]*Incident{}     // alert instance → its latest incident
	byAlertName := map[string]*Incident{} // rule → its latest incident, for notifications without a place
	var context []storage.Event
	blame := newDomainBlame(evs, gap)
	for _, e := range evs {
		if isContext(e.Kind) {
			context = append(context, e)
			if e.Kind == storage.DaemonStop || e.Kind == storage.DaemonStart {
				// Targets start afresh after a restart: a DOWN with no UP
				// before the stop does not hold its incident open.
				for _, in := range current {
					for k := range in.active {
						if strings.HasPrefix(k, "t:") {
							delete(in.active, k)
						}
					}
				}
			}
			continue
		}
		ak := alertKey(&e)
		var in *Incident
		if isNotification(e.Kind) {
			in = byAlert[ak]
			if in == nil {
				in = byAlertName[e.Alert]
			}
		}
		if in == nil {
			c := causeOf(&e)
			if d := blame.domain(&e); d != "" {
				c = cause{"domain", d}
			}
			if c.kind == "" {
				context = append(context, e)
				continue
			}
			in = current[c]
			if in == nil || (!in.open(e.Time) && e.Time.Sub(in.last) >= gap) {
				in = &Incident{CauseKind: c.kind, Cause: c.name, Start: e.Time, firstSign: e,
					active: map[string]time.Time{}, alertKeys: map[string]bool{}}
				current[c] = in
				all = append(all, in)
			}
		}
		in.events = append(in.events, e)
		if e.Time.After(in.last) {
			in.last = e.Time
		}
		switch e.Kind {
		case storage.AlertPending:
			if exp, ok := in.active["a:"+ak]; !ok || !exp.IsZero() {
				in.active["a:"+ak] = e.Time.Add(pendingHold(gap))
			}
		case storage.AlertFiring:
			in.active["a:"+ak] = time.Time{}
			if !in.Paged {
				in.Paged, in.detectedBy = true, e
				t := e.Time
				in.Detected = &t
			}
		case storage.AlertResolved:
			delete(in.active, "a:"+ak)
			in.lastResolve = e.Time
			// Only a firing alert resolves: it fired before the range.
			in.Paged = true
		case storage.TargetDown:
			in.active["t:"+e.TargetKey] = time.Time{}
			in.downs++
		case storage.TargetUp:
			delete(in.active, "t:"+e.TargetKey)
			in.lastResolve = e.Time
		case storage.NodeRemoved:
			// Its target is gone: no UP will come.
			delete(in.active, "t:"+e.TargetKey)
		case storage.NotificationSent:
			if in.Notified == nil {
				t := e.Time
				in.Notified = &t
			}
			if !slices.Contains(in.notifiers, e.Notifier) && e.Notifier != "" {
				in.notifiers = append(in.notifiers, e.Notifier)
			}
		case storage.NotificationFailed, storage.NotificationDropped:
			in.notifyFails++
		}
		if e.Alert != "" && !isNotification(e.Kind) {
			in.alertKeys[ak] = true
			byAlert[ak] = in
			byAlertName[e.Alert] = in
		}
	}

	// Daemon and config events go to the paged incidents open at the time.
	var other []storage.Event
	for _, e := range context {
		placed := false
		for _, in := range all {
			if !in.Paged || e.Time.Before(in.Start) || (!in.ongoing() && e.Time.After(in.end())) {
				continue
			}
			in.events = append(in.events, e)
			placed = true
		}
		if !placed {
			other = append(other, e)
		}
	}
	for _, in := range all {
		in.finish(until)
	}
	return all, other
}

// end is the incident's last resolve, or its last event when nothing
// resolved (a pending alert that went away).
func (in *Incident) end() time.Time {
	if !in.lastResolve.IsZero() {
		return in.lastResolve
	}
	return in.last
}

func (in *Incident) finish(until time.Time) {
	sort.SliceStable(in.events, func(i, j int) bool { return in.events[i].Time.Before(in.events[j].Time) })
	in.ID = in.Start.UTC().Format("20060102-150405") + "-" + slug(in.Cause)
	switch in.CauseKind {
	case "check":
		in.What = "check " + in.Cause
	default:
		in.What = in.CauseKind + " " + in.Cause
	}
	end := until
	if !in.ongoing() {
		e := in.end()
		in.Resolved = &e
		end = e
	}
	in.DurationSeconds = end.Sub(in.Start).Seconds()

	paths := map[string][]string{}
	var checkOrder []string
	worst := map[string]float64{}
	worstText := map[string]string{}
	var measures []string
	in.EventIDs = make([]int64, 0, len(in.events))
	for _, e := range in.events {
		in.EventIDs = append(in.EventIDs, e.ID)
		if e.Check != "" {
			if _, ok := paths[e.Check]; !ok {
				checkOrder = append(checkOrder, e.Check)
				paths[e.Check] = nil
			}
			if e.Path != "" && !slices.Contains(paths[e.Check], e.Path) {
				paths[e.Check] = append(paths[e.Check], e.Path)
			}
		}
		if e.Alert != "" && !slices.Contains(in.Alerts, e.Alert) && (e.Kind == storage.AlertFiring || e.Kind == storage.AlertPending) {
			in.Alerts = append(in.Alerts, e.Alert)
		}
		if e.Kind == storage.AlertFiring || e.Kind == storage.AlertPending {
			if m, v, text, ok := measureValue(e.Detail); ok {
				old, seen := worst[m]
				if !seen {
					measures = append(measures, m)
				}
				if !seen || worse(m, v, old) {
					worst[m], worstText[m] = v, text
				}
			}
		}
	}
	for _, c := range checkOrder {
		s := c
		if len(paths[c]) > 0 {
			s += " via " + strings.Join(paths[c], ", ")
		}
		in.Checks = append(in.Checks, s)
	}
	for _, m := range measures {
		in.Worst = append(in.Worst, m+" = "+worstText[m])
	}
}

// measureValue reads an alert detail "p99 = 2.1s (…)".
func measureValue(detail string) (measure string, v float64, text string, ok bool) {
	m, rest, found := strings.Cut(detail, " = ")
	if !found || strings.ContainsAny(m, " ") || m == "" {
		return "", 0, "", false
	}
	text, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
	if d, err := time.ParseDuration(text); err == nil {
		return m, d.Seconds(), text, true
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return m, f, text, true
	}
	return "", 0, "", false
}

// worse reports whether v is worse than old for measure m: lower is worse
// for ratios of success and days left on a certificate.
func worse(m string, v, old float64) bool {
	if m == "success_ratio" || m == "cert_days_left" {
		return v < old
	}
	return v > old
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// NoIncidentError is returned when --incident names no incident in range.
type NoIncidentError struct {
	ID    string
	Known []string
}

func (e *NoIncidentError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("no incident %q in this range (there are none; widen the range?)", e.ID)
	}
	return fmt.Sprintf("no incident %q in this range; incidents: %s", e.ID, strings.Join(e.Known, ", "))
}
