package web

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vantage-monitoring/vantage/storage"
)

// incidentView is one line of the page's "what is wrong now" list: a node,
// a third-party domain, a check or an alert the others do not explain, by
// name, since when and how bad.
type incidentView struct {
	Kind     string // node | domain | check | alert
	Class    string // down | degraded | firing | failing | held (CSS)
	What     string // "lb2", "static.shop-cdn.test", "cdn-static"
	State    string // the word after the name: "down", "degraded", …
	Since    string // "21:12 (3m)"; "" when not known
	SinceISO string
	Detail   string
	Where    string
	Reason   string // the latest error, for what is down or failing
	Link     string

	at time.Time
}

// The incident classes in the order the page lists them: what pages or
// has customers waiting first, then what may still be noise.
var incidentRank = map[string]int{"down": 0, "degraded": 0, "firing": 0, "failing": 1, "held": 1}

var kindRank = map[string]int{"node": 0, "domain": 1, "check": 2, "alert": 3}

// maxIncidents is how many lines show before the rest fold away.
const maxIncidents = 6

// incidentInput is what the incident list is built from.
type incidentInput struct {
	checks   []CheckStatus
	states   map[string]string // target key -> page state
	nodes    []NodeStatus
	domains  []domainView
	alerts   []AlertStatus
	events   []storage.Event // oldest first
	measured bool            // the measurement banner is shown
}

// nodeAcc gathers one node's trouble across checks and paths.
type nodeAcc struct {
	total, down, failing int
	checks               []string
	reason               string
	link                 int64
	since                time.Time
}

// checkAcc gathers one check's trouble that no node explains.
type checkAcc struct {
	total, down, failing int
	// where it is down and where only its last run failed: paths, and
	// nodes for a check without a node to blame
	downPaths, downNodes, failPaths, failNodes []string
	reason                                     string
	link                                       int64
	since                                      time.Time
}

func (st *Status) incidents(now time.Time, in incidentInput) []incidentView {
	// The latest TARGET DOWN per target: when its current episode began.
	downAt := map[string]time.Time{}
	for _, e := range in.events {
		if e.Kind == storage.TargetDown && e.TargetKey != "" {
			downAt[e.TargetKey] = e.Time
		}
	}
	// A node is to blame for a bad cell when another node on the same
	// check and path is up.
	upRow := map[[2]string]int{}
	for _, c := range in.checks {
		if s := in.states[c.Target]; c.Node != "" && (s == "up" || s == "degraded") {
			upRow[[2]string{c.Check, c.Path}]++
		}
	}
	nodes := map[string]*nodeAcc{}
	checks := map[string]*checkAcc{}
	var checkOrder []string
	for _, c := range in.checks {
		state := in.states[c.Target]
		bad := state == "down" || state == "failing"
		if c.Node != "" {
			n := nodes[c.Node]
			if n == nil {
				n = &nodeAcc{}
				nodes[c.Node] = n
			}
			n.total++
			if bad && upRow[[2]string{c.Check, c.Path}] > 0 {
				if state == "down" {
					n.down++
					n.since = earliest(n.since, downAt[c.Target])
				} else {
					n.failing++
				}
				n.checks = appendNew(n.checks, c.Check)
				if n.reason == "" || state == "down" && n.down == 1 {
					n.reason = c.LastReason
				}
				n.link = max(n.link, c.LastFailedRunID)
				continue
			}
		}
		a := checks[c.Check]
		if a == nil {
			a = &checkAcc{}
			checks[c.Check] = a
			checkOrder = append(checkOrder, c.Check)
		}
		a.total++
		if !bad {
			continue
		}
		if state == "down" {
			a.down++
			a.since = earliest(a.since, downAt[c.Target])
			a.downPaths = appendNew(a.downPaths, c.Path)
			if c.Node != "" {
				a.downNodes = appendNew(a.downNodes, c.Node)
			}
		} else {
			a.failing++
			a.failPaths = appendNew(a.failPaths, c.Path)
			if c.Node != "" {
				a.failNodes = appendNew(a.failNodes, c.Node)
			}
		}
		if a.reason == "" || state == "down" && a.down == 1 {
			a.reason = c.LastReason
		}
		a.link = max(a.link, c.LastFailedRunID)
	}

	// Alerts date what the events no longer reach, and name what they
	// cover.
	firstActive := func(match func(*AlertStatus) bool) time.Time {
		var t time.Time
		for i := range in.alerts {
			a := &in.alerts[i]
			if (a.State == "firing" || a.State == "pending") && match(a) {
				t = earliest(t, a.ActiveAt)
			}
		}
		return t
	}

	var out []incidentView
	covered := map[string]bool{} // "node=lb2", "check=x", "domain=y"

	verdicts := map[string]NodeStatus{}
	for _, v := range in.nodes {
		verdicts[v.Node] = v
	}
	var names []string
	for n := range nodes {
		names = append(names, n)
	}
	for n := range verdicts {
		if nodes[n] == nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		acc := nodes[name]
		if acc == nil {
			acc = &nodeAcc{}
		}
		v, hasV := verdicts[name]
		degraded := hasV && v.State == NodeDegraded
		held := hasV && v.State == NodeHeld
		if acc.down == 0 && acc.failing == 0 && !degraded && !held {
			continue
		}
		inc := incidentView{Kind: "node", What: name}
		var parts []string
		switch {
		case acc.down > 0:
			inc.Class, inc.State = "down", "down"
			parts = append(parts, fmt.Sprintf("down on %d of %d targets, the other nodes answer", acc.down, acc.total))
			if acc.failing > 0 {
				parts[0] += fmt.Sprintf(", last run failed on %d more", acc.failing)
			}
		case degraded:
			inc.Class, inc.State = "degraded", "degraded"
		case acc.failing > 0:
			inc.Class, inc.State = "failing", "failing"
			parts = append(parts, fmt.Sprintf("last run failed on %d of %d targets, the other nodes answer", acc.failing, acc.total))
		default:
			inc.Class, inc.State = "held", "held"
		}
		if degraded || held {
			if ev := nodeEvidence(v); ev != "" {
				parts = append(parts, ev)
			}
			if held {
				parts = append(parts, "not paged: vantage's own lag is as large as the difference")
			}
		}
		if acc.down > 0 || acc.failing > 0 {
			inc.Reason = shorten(st.clean(acc.reason), 160)
		}
		inc.Detail = strings.Join(parts, "; ")
		where := acc.checks
		if degraded || held {
			for _, s := range v.Affected {
				check, _, _ := strings.Cut(s, " via ")
				where = appendNew(where, check)
			}
		}
		inc.Where = listed(where, 4)
		at := acc.since
		if degraded {
			at = earliest(at, v.Since)
		}
		if at.IsZero() && inc.Class == "down" {
			// Older than the events read: the node's alerts date it.
			at = firstActive(func(a *AlertStatus) bool { return a.Labels["node"] == name })
		}
		inc.at = at
		if acc.link > 0 && st.o.Store != nil {
			inc.Link = "/runs/" + strconv.FormatInt(acc.link, 10)
		}
		covered["node="+name] = true
		out = append(out, inc)
	}

	for _, d := range in.domains {
		dom := d.Domain
		paging := firstActive(func(a *AlertStatus) bool { return a.State == "firing" && a.Labels["domain"] == dom })
		// One failed request in many is the internet, not an incident.
		if d.Runs == 0 || float64(d.Failed)/float64(d.Runs) < 0.1 && paging.IsZero() {
			continue
		}
		inc := incidentView{Kind: "domain", Class: "down", What: dom, State: "failing",
			Detail: fmt.Sprintf("%d of %d requests failed", d.Failed, d.Runs), Link: d.Link}
		if d.P90 != "–" {
			inc.Detail += ", p90 " + d.P90
		}
		inc.Where = "in " + listed(d.checks, 4)
		// The current episode of the domain's alerts: the first pending or
		// firing since the last resolve.
		var episode time.Time
		for _, e := range in.events {
			switch {
			case e.Domain != dom:
			case e.Kind == storage.AlertResolved:
				episode = time.Time{}
			case e.Kind == storage.AlertPending || e.Kind == storage.AlertFiring:
				episode = earliest(episode, e.Time)
			}
		}
		inc.at = earliest(firstActive(func(a *AlertStatus) bool { return a.Labels["domain"] == dom }), episode)
		covered["domain="+dom] = true
		out = append(out, inc)
	}

	for _, name := range checkOrder {
		a := checks[name]
		if a.down == 0 && a.failing == 0 {
			continue
		}
		inc := incidentView{Kind: "check", What: name, Class: "down", State: "down"}
		var parts []string
		if a.down > 0 {
			var n string
			switch {
			case a.down == a.total && a.total == 2:
				n = "both targets"
			case a.down == a.total && a.total > 2:
				n = fmt.Sprintf("all %d targets", a.total)
			case a.down < a.total:
				n = fmt.Sprintf("%d of %d targets", a.down, a.total)
			}
			parts = append(parts, strings.TrimSpace(n+where(a.downPaths, a.downNodes)))
		} else {
			inc.Class, inc.State = "failing", "failing"
		}
		if a.failing > 0 {
			f := "last run failed"
			if a.failing < a.total && a.total > 1 {
				f += fmt.Sprintf(" on %d of %d targets", a.failing, a.total)
			}
			if a.down > 0 || inc.Class == "failing" {
				parts = append(parts, f+where(a.failPaths, a.failNodes))
			}
		}
		if parts[0] == "" {
			parts = parts[1:]
		}
		inc.Detail = strings.Join(parts, "; ")
		inc.Reason = shorten(st.clean(a.reason), 160)
		at := a.since
		if at.IsZero() && inc.Class == "down" {
			at = firstActive(func(x *AlertStatus) bool { return x.Labels["check"] == name })
		}
		inc.at = at
		if a.link > 0 && st.o.Store != nil {
			inc.Link = "/runs/" + strconv.FormatInt(a.link, 10)
		}
		covered["check="+name] = true
		out = append(out, inc)
	}

	// Firing alerts that no line above explains. Pending ones have not
	// paged: they are no incident yet.
	for i := range in.alerts {
		a := &in.alerts[i]
		if a.State != "firing" || a.InhibitedBy != "" {
			continue
		}
		if a.Measure == "measurement_lag" && in.measured {
			continue // the measurement banner says it
		}
		if covered["node="+a.Labels["node"]] || covered["check="+a.Labels["check"]] || covered["domain="+a.Labels["domain"]] {
			continue
		}
		inc := incidentView{Kind: "alert", Class: "firing", What: a.Name, State: "firing", at: a.FiredAt}
		inc.Detail = st.clean(a.Annotations["summary"])
		if inc.Detail == "" {
			inc.Detail = alertWhere(a, st.clean)
			if a.ValueText != "" {
				inc.Detail += " (" + a.Measure + " " + a.ValueText + ")"
			}
		}
		if a.Flapping {
			inc.Detail += fmt.Sprintf("; flapping, fired %d× in the flap window", a.FiredCount)
		}
		out = append(out, inc)
	}

	for i := range out {
		if t := out[i].at; !t.IsZero() {
			out[i].Since, out[i].SinceISO = st.sinceText(now, t), t.In(st.o.Location).Format(time.RFC3339)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if incidentRank[a.Class] != incidentRank[b.Class] {
			return incidentRank[a.Class] < incidentRank[b.Class]
		}
		if kindRank[a.Kind] != kindRank[b.Kind] {
			return kindRank[a.Kind] < kindRank[b.Kind]
		}
		if !a.at.Equal(b.at) {
			// The oldest first: what went wrong first is often the cause.
			return !a.at.IsZero() && (b.at.IsZero() || a.at.Before(b.at))
		}
		return a.What < b.What
	})
	return out
}

// where is " via direct, alt-source on lb1, lb2" (either part may be empty).
func where(paths, nodes []string) string {
	var s string
	if p := strings.Join(paths, ", "); strings.Trim(p, ", ") != "" {
		s = " via " + p
	}
	if len(nodes) > 0 {
		s += " on " + listed(nodes, 4)
	}
	return s
}

// nodeEvidence is the detector's case against a node in words.
func nodeEvidence(v NodeStatus) string {
	var s string
	if v.SlowShare != nil {
		s = share(*v.SlowShare) + " of runs slow or failed"
		if v.SiblingSlowShare != nil {
			s += " (" + share(*v.SiblingSlowShare) + " on its siblings)"
		}
	}
	switch {
	case v.SlowRunsTake != nil && v.SiblingP90 != nil:
		if s != "" {
			s += ", "
		}
		s += "its slow runs take " + fmtSeconds(v.SlowRunsTake) + " against a p90 of " + fmtSeconds(v.SiblingP90) + " on its siblings"
	case v.P90 != nil && v.SiblingP90 != nil:
		if s != "" {
			s += ", "
		}
		s += "p90 " + fmtSeconds(v.P90) + " vs " + fmtSeconds(v.SiblingP90) + " on its siblings"
	}
	return s
}

// share is a ratio as a percentage with the precision it deserves.
func share(r float64) string {
	p := 100 * r
	switch {
	case p >= 10:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	case p >= 0.1 || p == 0:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return "<0.1%"
}

// sinceText is "21:12 (3m)": the clock time, and how long ago.
func (st *Status) sinceText(now, t time.Time) string {
	t = t.In(st.o.Location)
	layout := "15:04"
	if y1, m1, d1 := t.Date(); true {
		if y2, m2, d2 := now.In(st.o.Location).Date(); y1 != y2 || m1 != m2 || d1 != d2 {
			layout = "Jan 2 15:04"
		}
	}
	return t.Format(layout) + " (" + strings.TrimSuffix(ago(now.Sub(t)), " ago") + ")"
}

func alertWhere(a *AlertStatus, clean func(string) string) string {
	var where []string
	for k, val := range a.Labels {
		switch k {
		case "alertname", "severity", "location":
			continue
		}
		where = append(where, k+"="+clean(val))
	}
	sort.Strings(where)
	return strings.Join(where, " ")
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

func appendNew(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

// listed joins up to n items and says how many more there are.
func listed(items []string, n int) string {
	if len(items) > n {
		return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
	}
	return strings.Join(items, ", ")
}

// shorten cuts s to about n bytes at a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }
