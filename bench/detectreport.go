package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// nodeAlert is the alert that must page for a bad load-balancer node. The
// harness relies only on its name and its `node` label, never on the
// rule's measure, so it keeps working while the detector changes.
const nodeAlert = "LoadBalancerNodeDegraded"

// resolveTarget is how soon after the fault ends the node alert must
// resolve.
const resolveTarget = 2 * time.Minute

// notice is one alert of one webhook notification, as the receiver got it.
type notice struct {
	At          time.Time         `json:"at"`
	Status      string            `json:"status"` // firing or resolved
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	GroupKey    string            `json:"group_key,omitempty"`
}

func (n notice) alertname() string { return n.Labels["alertname"] }

// key identifies the alert instance (one notification group per
// instance): its name and every label, in order.
func (n notice) key() string {
	ks := slices.Sorted(maps.Keys(n.Labels))
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s=%q,", k, n.Labels[k])
	}
	return b.String()
}

// window is when a fault was in force: [Start, End).
type window struct{ Start, End time.Time }

// shopCopy is one demo shop the daemon watches. Its check and path names
// start with Name + "-" and its nodes have their own names and addresses,
// so every page belongs to exactly one copy.
type shopCopy struct {
	Name  string
	Ratio float64 // share of lb2's responses slowed; 0: the healthy copy
	// PageTarget is the longest acceptable time from fault start to the
	// node page (0: no target).
	PageTarget time.Duration
	Nodes      []nodeID
	Bad        nodeID   // the node the faults hit (lb2)
	Faults     []window // in time order
}

type nodeID struct{ Name, Addr string }

func (c shopCopy) healthy() bool { return c.Ratio == 0 }

// owns reports whether labels belong to this copy: its node by name or
// address, or a check or path of its own.
func (c shopCopy) owns(l map[string]string) bool {
	if n := l["node"]; n != "" {
		for _, nd := range c.Nodes {
			if n == nd.Name || n == nd.Addr {
				return true
			}
		}
	}
	for _, k := range []string{"check", "path"} {
		if strings.HasPrefix(l[k], c.Name+"-") {
			return true
		}
	}
	return false
}

// namesBad reports whether labels name the copy's bad node.
func (c shopCopy) namesBad(l map[string]string) bool {
	n := l["node"]
	return n != "" && (n == c.Bad.Name || n == c.Bad.Addr)
}

// page is a notification that starts an episode: a firing notice for an
// alert instance that was not firing. Repeats and updates of a firing
// instance are not new pages.
type page struct {
	notice
	copy int // index into copies; -1: no copy owns it
}

// episodes replays the notices in time order and returns the pages and,
// per alert instance, the times it resolved.
func episodes(copies []shopCopy, notices []notice) (pages []page, resolved map[string][]time.Time) {
	ns := slices.Clone(notices)
	slices.SortStableFunc(ns, func(a, b notice) int { return a.At.Compare(b.At) })
	firing := map[string]bool{}
	resolved = map[string][]time.Time{}
	for _, n := range ns {
		k := n.key()
		switch n.Status {
		case "firing":
			if firing[k] {
				continue
			}
			firing[k] = true
			p := page{notice: n, copy: -1}
			for i, c := range copies {
				if c.owns(n.Labels) {
					p.copy = i
					break
				}
			}
			pages = append(pages, p)
		case "resolved":
			if firing[k] {
				resolved[k] = append(resolved[k], n.At)
			}
			firing[k] = false
		}
	}
	return pages, resolved
}

// trialFigures are one fault's figures.
type trialFigures struct {
	Fault window
	// Paged: the node alert named the bad node while the fault was on
	// (Carried: it was still firing from before the fault started).
	Paged, Carried bool
	PageAfter      time.Duration
	// StayedFiring: paged, and no RESOLVED before the fault ended.
	StayedFiring bool
	// FiringAtEnd: the node alert was firing when the fault ended; then
	// Resolved says whether it resolved before the next fault (or the end
	// of the bench), ResolveAfter how long after the fault ended.
	FiringAtEnd, Resolved bool
	ResolveAfter          time.Duration
	// Pages are every page of the copy from the fault's start to the next
	// fault's start, by alertname.
	Pages map[string]int
}

func (t trialFigures) pageCount() int {
	n := 0
	for _, v := range t.Pages {
		n += v
	}
	return n
}

// scenarioFigures are one copy's figures over the whole bench.
type scenarioFigures struct {
	Copy    shopCopy
	Watched time.Duration
	Trials  []trialFigures
	// Pages and FalsePages by alertname. A false page is any page of the
	// healthy copy, and any page of a faulted copy that does not name its
	// bad node while a fault is on.
	Pages, FalsePages map[string]int
}

// detectionFigures are the whole bench's figures.
type detectionFigures struct {
	Scenarios []scenarioFigures
	// Unattributed are pages no copy owns, by alertname (false pages too).
	Unattributed map[string]int
	// Groups count notifications per copy, alert and node.
	Groups []groupCount
}

// groupCount is the notifications of one copy's alert on one node (or on
// no node): how many alert instances, firing and resolved notifications.
type groupCount struct {
	Copy, Alert, Node         string
	Instances, Firing, Resolv int
}

// analyze turns the recorded notices into figures. start and end bound
// the bench; each copy's faults are in time order and end before end.
func analyze(copies []shopCopy, notices []notice, start, end time.Time) detectionFigures {
	pages, resolved := episodes(copies, notices)
	out := detectionFigures{Unattributed: map[string]int{}, Groups: groupCounts(copies, notices)}
	for _, p := range pages {
		if p.copy < 0 {
			out.Unattributed[p.alertname()]++
		}
	}
	for ci, c := range copies {
		sf := scenarioFigures{Copy: c, Watched: end.Sub(start), Pages: map[string]int{}, FalsePages: map[string]int{}}
		inFault := func(t time.Time) bool {
			for _, w := range c.Faults {
				if !t.Before(w.Start) && !t.After(w.End) {
					return true
				}
			}
			return false
		}
		var mine []page
		for _, p := range pages {
			if p.copy != ci {
				continue
			}
			mine = append(mine, p)
			sf.Pages[p.alertname()]++
			if c.healthy() || !c.namesBad(p.Labels) || !inFault(p.At) {
				sf.FalsePages[p.alertname()]++
			}
		}
		for i, w := range c.Faults {
			next := end
			if i+1 < len(c.Faults) {
				next = c.Faults[i+1].Start
			}
			sf.Trials = append(sf.Trials, trialOf(c, w, next, mine, resolved))
		}
		out.Scenarios = append(out.Scenarios, sf)
	}
	return out
}

func groupCounts(copies []shopCopy, notices []notice) []groupCount {
	type gk struct{ c, a, n string }
	counts := map[gk]*groupCount{}
	insts := map[gk]map[string]bool{}
	for _, n := range notices {
		owner := "(none)"
		for _, c := range copies {
			if c.owns(n.Labels) {
				owner = c.Name
				break
			}
		}
		k := gk{owner, n.alertname(), n.Labels["node"]}
		g := counts[k]
		if g == nil {
			g = &groupCount{Copy: k.c, Alert: k.a, Node: k.n}
			counts[k], insts[k] = g, map[string]bool{}
		}
		insts[k][n.key()] = true
		g.Instances = len(insts[k])
		if n.Status == "firing" {
			g.Firing++
		} else {
			g.Resolv++
		}
	}
	var out []groupCount
	for _, g := range counts {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b groupCount) int {
		return cmp.Or(cmp.Compare(a.Copy, b.Copy), cmp.Compare(a.Alert, b.Alert), cmp.Compare(a.Node, b.Node))
	})
	return out
}

// trialOf computes one fault's figures from the copy's pages and the
// resolve times of every instance.
func trialOf(c shopCopy, w window, next time.Time, mine []page, resolved map[string][]time.Time) trialFigures {
	tf := trialFigures{Fault: w, Pages: map[string]int{}}
	// The node alert's episodes for the bad node: [fired, resolved).
	type span struct{ from, to time.Time }
	var spans []span
	for _, p := range mine {
		if p.alertname() != nodeAlert || !c.namesBad(p.Labels) {
			continue
		}
		to := time.Time{} // still firing at the end
		for _, r := range resolved[p.key()] {
			if !r.Before(p.At) {
				to = r
				break
			}
		}
		spans = append(spans, span{p.At, to})
	}
	firingAt := func(t time.Time) (span, bool) {
		for _, s := range spans {
			if !t.Before(s.from) && (s.to.IsZero() || t.Before(s.to)) {
				return s, true
			}
		}
		return span{}, false
	}
	var first span
	if s, ok := firingAt(w.Start); ok {
		tf.Paged, tf.Carried, first = true, true, s
	} else {
		for _, s := range spans {
			if !s.from.Before(w.Start) && !s.from.After(w.End) {
				tf.Paged, tf.PageAfter, first = true, s.from.Sub(w.Start), s
				break
			}
		}
	}
	tf.StayedFiring = tf.Paged && (first.to.IsZero() || !first.to.Before(w.End))
	if s, ok := firingAt(w.End); ok {
		tf.FiringAtEnd = true
		if !s.to.IsZero() && !s.to.After(next) {
			tf.Resolved, tf.ResolveAfter = true, s.to.Sub(w.End)
		}
	}
	for _, p := range mine {
		if !p.At.Before(w.Start) && p.At.Before(next) {
			tf.Pages[p.alertname()]++
		}
	}
	return tf
}

// detectionSetup describes the run for the report.
type detectionSetup struct {
	command          string
	started, ended   time.Time
	machine          machine
	loadEnd          string
	interval         time.Duration
	latency          time.Duration
	on, off, warmup  time.Duration
	trials, burners  int
	browser          bool
	seed             uint64
	notificationsLog string
	errors           []string
}

// detectionHeading starts the BENCHMARKS.md section this benchmark owns.
const detectionHeading = "## Detection benchmark"

// markdown renders the section: setup, a table per scenario with targets
// and verdicts, the per-trial details and the pages by alert.
func (f detectionFigures) markdown(s detectionSetup) string {
	var b strings.Builder
	m := s.machine
	b.WriteString(detectionHeading + "\n\n")
	fmt.Fprintf(&b, "How to reproduce: `make bench-detection` (about 45 minutes; it rewrites only this section). "+
		"A short smoke run: `make bench-detection BENCH_DETECTION_FLAGS='-detection.trials=1 -detection.on=2m -detection.off=1m -detection.warmup=1m -out='`.\n\n")
	fmt.Fprintf(&b, "- Command: `%s`\n", s.command)
	fmt.Fprintf(&b, "- Date: %s, %.1f minutes\n", s.started.Format("2006-01-02 15:04 UTC"), s.ended.Sub(s.started).Minutes())
	fmt.Fprintf(&b, "- Machine: %d cores (nproc), %s, %s RAM, Linux %s; Go %s; vantage revision %s\n",
		m.cores, m.cpu, m.mem, m.kernel, m.goVersion, m.rev)
	fmt.Fprintf(&b, "- Load average (1/5/15 min): %s at the start, %s at the end\n", m.load, s.loadEnd)
	browser := "without the browser journey"
	if s.browser {
		browser = "with the browser journey `web-checkout`"
	}
	fmt.Fprintf(&b, "- Setup: one daemon (in-process, as `vantage demo` runs it: 2 s alert evaluation) with the demo's "+
		"generated config and alert rules at a %s interval, watching %d copies of the demo shop at once, each on its own "+
		"loopback addresses, DNS server and paths, with its own three nodes. The healthy copy has no fault for the whole "+
		"bench, %s, and %d CPU-burning processes run throughout. The other copies get lb2 +%s on a share of its responses, "+
		"%s on and %s off, %s each, after a %s warm-up and a random start phase (seed %d). "+
		"Pages arrive through the demo config's webhook notifier on loopback.\n",
		promDur(s.interval), len(f.Scenarios), browser, s.burners, secs(s.latency), promDur(s.on), promDur(s.off), plural(s.trials, "trial"), promDur(s.warmup), s.seed)
	if s.notificationsLog != "" {
		fmt.Fprintf(&b, "- Every notification received: `%s`\n", s.notificationsLog)
	}
	b.WriteString("\nA page is a firing notification for an alert instance that was not firing (repeats and updates of a " +
		"firing alert are not new pages). A false page is any page for the healthy copy, and any page for a faulted " +
		"copy that does not name its lb2 while a fault is on. Pages per incident count every page of the copy from " +
		"the fault's start to the next fault's start; the target is the node page alone.\n\n")

	row := func(name, value, target string, pass *bool) {
		verdict := ""
		if pass != nil {
			verdict = "MISS"
			if *pass {
				verdict = "PASS"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, value, cmp.Or(target, "—"), verdict)
	}
	for _, sc := range f.Scenarios {
		c := sc.Copy
		if c.healthy() {
			fmt.Fprintf(&b, "### Healthy copy `%s` (no fault, %s, %d CPU burners), watched %.1f minutes\n\n",
				c.Name, browser, s.burners, sc.Watched.Minutes())
			b.WriteString("| measure | value | target | verdict |\n|---|--:|---|---|\n")
			row("pages", byAlert(sc.Pages), "0", ptr(total(sc.Pages) == 0))
			b.WriteString("\n")
			continue
		}
		fmt.Fprintf(&b, "### Copy `%s`: %s +%s on %.0f %% of responses, %s\n\n",
			c.Name, c.Bad.Name, secs(s.latency), c.Ratio*100, plural(len(sc.Trials), "trial"))
		b.WriteString("| measure | value | target | verdict |\n|---|--:|---|---|\n")
		row("false pages", byAlert(sc.FalsePages), "0", ptr(total(sc.FalsePages) == 0))
		var lat, res []time.Duration
		paged, stayed, resolvedOK, onePage := 0, 0, 0, 0
		allResolved := true
		var perIncident []string
		carried := 0
		for _, t := range sc.Trials {
			if t.Paged {
				paged++
			}
			// A page carried over from before the fault says nothing about
			// how fast the fault was detected.
			if t.Carried {
				carried++
			} else if t.Paged {
				lat = append(lat, t.PageAfter)
			}
			if t.StayedFiring {
				stayed++
			}
			if t.FiringAtEnd {
				if t.Resolved {
					res = append(res, t.ResolveAfter)
					if t.ResolveAfter <= resolveTarget {
						resolvedOK++
					}
				} else {
					allResolved = false
				}
			}
			if t.pageCount() == 1 && t.Pages[nodeAlert] == 1 {
				onePage++
			}
			perIncident = append(perIncident, fmt.Sprint(t.pageCount()))
		}
		n := len(sc.Trials)
		latTarget, latPass := "", (*bool)(nil)
		if c.PageTarget > 0 {
			latTarget = fmt.Sprintf("≤ %s in every trial", fmtDur(c.PageTarget))
			latPass = ptr(n > 0 && len(lat) == n && slices.Max(lat) <= c.PageTarget)
		}
		latVal := durPair(lat, len(lat), n)
		if carried > 0 {
			latVal += fmt.Sprintf("; %d carried over from a page before the fault", carried)
		}
		row(fmt.Sprintf("fault → node page naming %s, median / worst", c.Bad.Name), latVal, latTarget, latPass)
		row("trials paged while the fault was on", fmt.Sprintf("%d/%d", paged, n), "every trial", ptr(n > 0 && paged == n))
		row("node alert stayed firing through the fault", fmt.Sprintf("%d/%d", stayed, n), "every trial", ptr(n > 0 && stayed == n))
		resVal := durPair(res, len(res), n)
		if !allResolved {
			resVal += fmt.Sprintf("; %d not resolved before the next fault or the end", countUnresolved(sc.Trials))
		}
		// Strict: a trial whose alert was not firing when the fault ended
		// did not resolve "after the fault" either.
		row("fault end → RESOLVED, median / worst", resVal, "≤ "+fmtDur(resolveTarget)+" in every trial",
			ptr(n > 0 && allResolved && resolvedOK == n))
		row("pages per incident (per trial)", strings.Join(perIncident, ", "), "exactly 1 (the node page)", ptr(n > 0 && onePage == n))
		row("pages by alert (whole bench)", byAlert(sc.Pages), "", nil)
		b.WriteString("\n")
	}
	// Pages without a copy's labels (the daemon's own alerts, say) reach
	// the same people, so they are judged too.
	b.WriteString("### Pages no copy owns (no node, check or path label of a copy)\n\n")
	b.WriteString("| measure | value | target | verdict |\n|---|--:|---|---|\n")
	row("pages", byAlert(f.Unattributed), "0", ptr(total(f.Unattributed) == 0))
	b.WriteString("\n")

	b.WriteString("Per trial (times from the fault's start; \"carried\": the node alert was still firing from before):\n\n")
	b.WriteString("| copy | trial | fault on at | node page after | stayed firing | RESOLVED after fault end | pages in incident |\n|---|--:|--:|--:|---|--:|---|\n")
	for _, sc := range f.Scenarios {
		for i, t := range sc.Trials {
			pageCell := "none"
			switch {
			case t.Carried:
				pageCell = "carried"
			case t.Paged:
				pageCell = fmtDur(t.PageAfter)
			}
			resCell := "not firing"
			switch {
			case t.FiringAtEnd && t.Resolved:
				resCell = fmtDur(t.ResolveAfter)
			case t.FiringAtEnd:
				resCell = "not resolved"
			}
			fmt.Fprintf(&b, "| %s | %d | +%s | %s | %s | %s | %s |\n", sc.Copy.Name, i+1,
				t.Fault.Start.Sub(s.started).Round(time.Second), pageCell, yesNo(t.StayedFiring), resCell, byAlert(t.Pages))
		}
	}
	b.WriteString("\n")
	if len(f.Groups) > 0 {
		b.WriteString("Notifications received, by copy, alert and node (an instance is one label set: one notification group):\n\n")
		b.WriteString("| copy | alert | node | instances | firing notifications | resolved notifications |\n|---|---|---|--:|--:|--:|\n")
		for _, g := range f.Groups {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d |\n", g.Copy, g.Alert, cmp.Or(g.Node, "—"), g.Instances, g.Firing, g.Resolv)
		}
		b.WriteString("\n")
	}
	if len(s.errors) > 0 {
		b.WriteString("Errors:\n\n")
		for _, e := range s.errors {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func countUnresolved(ts []trialFigures) int {
	n := 0
	for _, t := range ts {
		if t.FiringAtEnd && !t.Resolved {
			n++
		}
	}
	return n
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// byAlert renders counts as "3 (LoadBalancerNodeDegraded 1, ShopSlowForCustomers 2)".
func byAlert(m map[string]int) string {
	n := total(m)
	if n == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
}

// durPair is "median / worst" of ds, noting trials without a value.
func durPair(ds []time.Duration, have, of int) string {
	if len(ds) == 0 {
		return "none"
	}
	s := fmtDur(median(ds)) + " / " + fmtDur(slices.Max(ds))
	if have < of {
		s += fmt.Sprintf(" (%d of %d trials)", have, of)
	}
	return s
}

func fmtDur(d time.Duration) string {
	if d >= 10*time.Minute {
		return d.Round(time.Second).String()
	}
	return fmt.Sprintf("%.0f s", d.Seconds())
}

// secs renders d as "1.5 s".
func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s" }

// promDur renders d as the config does: "10s", "5m".
func promDur(d time.Duration) string { return model.Duration(d).String() }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// spliceSection replaces the section starting with heading in doc (up to
// the next "## " heading) by section, or appends section when doc has
// none. The other sections stay as they are.
func spliceSection(doc, heading, section string) string {
	before, rest, found := cutSection(doc, heading)
	if !found {
		doc = strings.TrimRight(doc, "\n")
		if doc == "" {
			return section
		}
		return doc + "\n\n" + section
	}
	return before + section + rest
}

// cutSection splits doc around the section starting with heading: the text
// before it and the text from the next "## " heading on.
func cutSection(doc, heading string) (before, after string, found bool) {
	i := -1
	if strings.HasPrefix(doc, heading+"\n") {
		i = 0
	} else if j := strings.Index(doc, "\n"+heading+"\n"); j >= 0 {
		i = j + 1
	}
	if i < 0 {
		return doc, "", false
	}
	rest := doc[i+len(heading)+1:]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		return doc[:i], rest[j+1:], true
	}
	return doc[:i], "", true
}

// section returns the section starting with heading ("" when doc has none).
func section(doc, heading string) string {
	before, after, found := cutSection(doc, heading)
	if !found {
		return ""
	}
	return strings.TrimSuffix(doc[len(before):], after)
}
