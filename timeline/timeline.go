// Package timeline turns the stored event list into what people read after
// an incident: a Markdown post-mortem section (time, what, where, detail)
// with runs of similar events folded, or JSON for tools. It also parses the
// since/until arguments shared by `vantage timeline` and the API.
package timeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	// --timezone must work in minimal containers without zoneinfo files.
	_ "time/tzdata"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/storage"
)

// DefaultSince is the range start when none is given.
const DefaultSince = "2h"

// DefaultGap is how far apart two similar events may be and still fold.
const DefaultGap = 5 * time.Minute

// flapMin is the fewest DOWN/UP events at one place that read as flapping;
// a single outage (DOWN then UP) stays two rows so its start and end show.
const flapMin = 4

// MinTime and MaxTime bound the times ParseTime accepts: the store keeps
// times as Unix nanoseconds in an int64, so anything outside would wrap
// around (and a year past 9999 cannot even be written as JSON).
var (
	MinTime = time.Unix(0, math.MinInt64).UTC() // 1677-09-21T00:12:43Z
	MaxTime = time.Unix(0, math.MaxInt64).UTC() // 2262-04-11T23:47:16Z
)

// ParseTime reads an RFC 3339 time, a Unix timestamp in seconds, "now",
// or a Prometheus duration ("30m", "2h", "1d") meaning that long before
// now. Times outside MinTime..MaxTime are an error.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, errors.New("empty time")
	case s == "now":
		return now, nil
	}
	t, err := parseTime(s, now)
	if err != nil {
		return time.Time{}, err
	}
	if t.Before(MinTime) || t.After(MaxTime) {
		return time.Time{}, fmt.Errorf("time %q is out of range: want a time between %s and %s",
			s, MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))
	}
	return t, nil
}

func parseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return now.Add(-time.Duration(d)), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 {
		// Compare as floats first: converting 1e20 to int64 would wrap.
		if f > float64(MaxTime.Unix()) {
			return MaxTime.Add(time.Second), nil
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want an RFC 3339 time (2025-11-28T21:00:00Z), a Unix timestamp or a duration back from now (30m, 2h, 1d)", s)
}

// ParseRange parses since and until (either may be empty: since defaults to
// DefaultSince ago, until to now) and checks that since is not after until.
func ParseRange(since, until string, now time.Time) (time.Time, time.Time, error) {
	if strings.TrimSpace(since) == "" {
		since = DefaultSince
	}
	from, err := ParseTime(since, now)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("since: %w", err)
	}
	to := now
	if strings.TrimSpace(until) != "" {
		if to, err = ParseTime(until, now); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("until: %w", err)
		}
	}
	if from.After(to) {
		return time.Time{}, time.Time{}, fmt.Errorf("since (%s) is after until (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// ParseLocation reads a --timezone value: "" or "Local" for the local zone,
// "UTC", or an IANA name such as "Europe/Amsterdam".
func ParseLocation(name string) (*time.Location, error) {
	switch strings.TrimSpace(name) {
	case "", "Local", "local":
		return time.Local, nil
	case "UTC", "utc", "Z":
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want Local, UTC or an IANA name like Europe/Amsterdam", name)
	}
	return loc, nil
}

// Row is one line of the folded timeline: a single event, or a run of
// similar events at one place.
type Row struct {
	First, Last time.Time
	// Kind is the events' kind; for a flapping target it is TargetDown
	// and Counts holds both kinds.
	Kind   storage.Kind
	Counts map[storage.Kind]int
	Where  string
	Events []storage.Event
}

// Count is how many events the row folds.
func (r *Row) Count() int { return len(r.Events) }

// Flapping reports whether the row folds alternating DOWN/UP events.
func (r *Row) Flapping() bool { return len(r.Counts) > 1 }

// Where names an event's place: alert, check/path/node, domain and, for
// notifications, the notifier.
func Where(e *storage.Event) string {
	var parts []string
	if e.Alert != "" {
		parts = append(parts, e.Alert)
	}
	var tgt []string
	for _, p := range []string{e.Check, e.Path, e.Node} {
		if p != "" {
			tgt = append(tgt, p)
		}
	}
	if len(tgt) > 0 {
		parts = append(parts, strings.Join(tgt, "/"))
	} else if e.TargetKey != "" {
		parts = append(parts, e.TargetKey)
	}
	if e.Domain != "" {
		parts = append(parts, e.Domain)
	}
	w := strings.Join(parts, ", ")
	if w == "" && e.Notifier == "" {
		switch e.Kind {
		case storage.DaemonStart, storage.DaemonStop, storage.ConfigReload, storage.ConfigReloadFailed:
			return "vantage"
		}
	}
	if e.Notifier != "" {
		if w != "" {
			w += " → "
		}
		w += e.Notifier
	}
	return w
}

// class groups kinds that fold together: a target's DOWN and UP alternate
// when it flaps.
func class(k storage.Kind) storage.Kind {
	if k == storage.TargetUp {
		return storage.TargetDown
	}
	return k
}

// Fold groups consecutive events of the same kind at the same place that
// are at most gap apart into one row. "Consecutive" is per place: events
// elsewhere in between do not break a run, another kind at the same place
// does. Alternating DOWN/UP of one target folds into one flapping row once
// there are flapMin of them. Rows are ordered by their first event.
func Fold(events []storage.Event, gap time.Duration) []Row {
	if gap <= 0 {
		gap = DefaultGap
	}
	var rows []*Row
	open := map[string]*Row{}
	for _, e := range events {
		where := Where(&e)
		key := where
		if e.Kind == storage.NotificationSent {
			// A firing page and its resolved page are two messages.
			key += "\x00" + e.Detail
		}
		if r := open[key]; r != nil && class(r.Kind) == class(e.Kind) && e.Time.Sub(r.Last) <= gap {
			r.Last = e.Time
			r.Counts[e.Kind]++
			r.Events = append(r.Events, e)
			continue
		}
		r := &Row{First: e.Time, Last: e.Time, Kind: e.Kind, Counts: map[storage.Kind]int{e.Kind: 1}, Where: where, Events: []storage.Event{e}}
		rows = append(rows, r)
		open[key] = r
	}
	var out []Row
	for _, r := range rows {
		if r.Flapping() && len(r.Events) < flapMin {
			// Too short to call flapping: show each edge.
			for _, e := range r.Events {
				out = append(out, Row{First: e.Time, Last: e.Time, Kind: e.Kind, Counts: map[storage.Kind]int{e.Kind: 1},
					Where: r.Where, Events: []storage.Event{e}})
			}
			continue
		}
		if r.Flapping() {
			r.Kind = storage.TargetDown
		}
		out = append(out, *r)
	}
	// Split rows can interleave with later ones; keep time order, stable.
	sortRows(out)
	return out
}

func sortRows(rows []Row) {
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && rows[j].First.Before(rows[j-1].First); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

// What is the human wording of a kind.
func What(k storage.Kind) string {
	switch k {
	case storage.TargetDown:
		return "DOWN"
	case storage.TargetUp:
		return "UP"
	case storage.AlertPending:
		return "alert pending"
	case storage.AlertFiring:
		return "alert firing"
	case storage.AlertResolved:
		return "alert resolved"
	case storage.NotificationSent:
		return "notification sent"
	case storage.NotificationFailed:
		return "notification failed"
	case storage.NotificationDropped:
		return "notification dropped"
	case storage.ConfigReload:
		return "config reloaded"
	case storage.ConfigReloadFailed:
		return "config reload failed"
	case storage.DaemonStart:
		return "vantage started"
	case storage.DaemonStop:
		return "vantage stopped"
	case storage.NodeAdded:
		return "node joined DNS"
	case storage.NodeRemoved:
		return "node left DNS"
	}
	return string(k)
}

// what describes a row: "DOWN", "14× notification failed" or
// "flapping: 3× DOWN, 2× UP (now UP)".
func (r *Row) what() string {
	if r.Flapping() {
		last := r.Events[len(r.Events)-1].Kind
		return fmt.Sprintf("flapping: %d× DOWN, %d× UP (ended %s)", r.Counts[storage.TargetDown], r.Counts[storage.TargetUp], What(last))
	}
	if n := r.Count(); n > 1 {
		return fmt.Sprintf("%d× %s", n, What(r.Kind))
	}
	return What(r.Kind)
}

// detail lists the row's distinct details, first seen first.
func (r *Row) detail() string {
	const maxShown = 3
	seen := map[string]bool{}
	var list []string
	more := 0
	for _, e := range r.Events {
		if r.Flapping() && e.Kind == storage.TargetUp {
			continue // "down for 30s" says little next to why it went down
		}
		d := readableFolded(strings.TrimSpace(e.Detail))
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		if len(list) == maxShown {
			more++
			continue
		}
		list = append(list, d)
	}
	s := strings.Join(list, "; ")
	if more > 0 {
		s += fmt.Sprintf("; and %d other", more)
	}
	return s
}

// Options control rendering.
type Options struct {
	// Location for displayed times; nil means time.Local.
	Location *time.Location
	// Gap is the folding gap (default DefaultGap); incidents of one cause
	// closer than it are one incident.
	Gap time.Duration
	// All keeps what never paged (pending alerts that never fired, DOWN/UP
	// without an alert, daemon events outside incidents) in a collapsed
	// "Not paged" appendix; without it they are counted and left out.
	All bool
	// Incident, when set, selects the one incident with this ID.
	Incident string
}

func (o Options) loc() *time.Location {
	if o.Location == nil {
		return time.Local
	}
	return o.Location
}

// view is what a rendering shows: the incidents it prints and the events
// left for the appendix.
type view struct {
	shown  []*Incident
	quiet  []*Incident // episodes that never paged
	other  []storage.Event
	single *Incident
}

func newView(events []storage.Event, until time.Time, o Options) (view, error) {
	incs, other := Incidents(events, until, o.Gap)
	var v view
	for _, in := range incs {
		if in.Paged {
			v.shown = append(v.shown, in)
		} else {
			v.quiet = append(v.quiet, in)
		}
	}
	v.other = other
	if o.Incident != "" {
		var known []string
		for _, in := range incs {
			if in.ID == o.Incident {
				v.single = in
			}
			if in.Paged || o.All {
				known = append(known, in.ID)
			}
		}
		if v.single == nil {
			return v, &NoIncidentError{ID: o.Incident, Known: known}
		}
	}
	return v, nil
}

// Markdown writes events as a post-mortem section: a heading with the
// range, one section per incident (a header, then a table of time, what,
// where and detail), and what never paged as a collapsed appendix with
// o.All. With o.Incident it writes that incident alone.
func Markdown(w io.Writer, events []storage.Event, since, until time.Time, o Options) error {
	loc := o.loc()
	since, until = since.In(loc), until.In(loc)
	v, err := newView(events, until, o)
	if err != nil {
		return err
	}
	oneDay := sameDay(since, until)
	stamp := func(t time.Time) string {
		if oneDay {
			return t.In(loc).Format("15:04:05")
		}
		return t.In(loc).Format("2006-01-02 15:04:05")
	}
	var b strings.Builder
	if v.single != nil {
		writeIncident(&b, v.single, "###", stamp, loc, o.Gap)
		fmt.Fprintf(&b, "\nTimes in %s.\n", zoneName(loc, until))
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "### Timeline %s – %s\n\n", since.Format("2006-01-02 15:04:05"), until.Format("2006-01-02 15:04:05 MST"))
	if len(events) == 0 {
		b.WriteString("No events in this range.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	switch len(v.shown) {
	case 0:
		b.WriteString("No incidents: no alert fired in this range.")
	case 1:
		b.WriteString("1 incident:")
	default:
		fmt.Fprintf(&b, "%d incidents:", len(v.shown))
	}
	for i, in := range v.shown {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %s (%s, %s)", sep, in.What, stamp(in.Start), durationText(in))
	}
	if len(v.shown) > 0 {
		b.WriteString(".")
	}
	quietEvents := len(v.other)
	for _, in := range v.quiet {
		quietEvents += len(in.events)
	}
	if quietEvents > 0 && !o.All {
		if quietEvents == 1 {
			b.WriteString(" 1 event that never paged is left out (`--all`, or `all=true` in the API, shows it).")
		} else {
			fmt.Fprintf(&b, " %d events that never paged are left out (`--all`, or `all=true` in the API, shows them).", quietEvents)
		}
	}
	b.WriteString("\n")
	for _, in := range v.shown {
		b.WriteString("\n")
		writeIncident(&b, in, "####", stamp, loc, o.Gap)
	}
	if o.All && quietEvents > 0 {
		var rows []Row
		for _, in := range v.quiet {
			rows = append(rows, Fold(in.events, o.Gap)...)
		}
		rows = append(rows, Fold(v.other, o.Gap)...)
		sortRows(rows)
		fmt.Fprintf(&b, "\n<details>\n<summary>Not paged: %s (pending alerts that never fired, DOWN/UP without an alert, vantage itself)</summary>\n\n", plural(quietEvents, "event"))
		writeTable(&b, rows, stamp, loc)
		b.WriteString("\n</details>\n")
	}
	fmt.Fprintf(&b, "\nTimes in %s. %d events.\n", zoneName(loc, until), len(events))
	_, err = io.WriteString(w, b.String())
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func durationText(in *Incident) string {
	d := durfmt.Format(time.Duration(in.DurationSeconds*float64(time.Second)), durfmt.Elapsed)
	if in.Resolved == nil {
		return "ongoing for " + d
	}
	return d
}

// writeIncident writes one incident's header and table.
func writeIncident(b *strings.Builder, in *Incident, heading string, stamp func(time.Time) string, loc *time.Location, gap time.Duration) {
	after := func(t time.Time) string {
		if d := t.Sub(in.Start); d > 0 {
			return " (+" + durfmt.Format(d, durfmt.Elapsed) + ")"
		}
		return ""
	}
	fmt.Fprintf(b, "%s Incident %s: %s\n\n", heading, in.ID, cell(in.What))
	var impact []string
	if len(in.Checks) > 0 {
		impact = append(impact, cell(strings.Join(in.Checks, "; ")))
	}
	if len(in.Alerts) > 0 {
		impact = append(impact, "alerts "+cell(strings.Join(in.Alerts, ", ")))
	}
	if len(in.Worst) > 0 {
		impact = append(impact, "worst "+cell(strings.Join(in.Worst, ", ")))
	}
	if in.downs > 0 {
		n := "1 target went DOWN"
		if in.downs > 1 {
			n = fmt.Sprintf("%d DOWN transitions", in.downs)
		}
		impact = append(impact, n)
	}
	if len(impact) > 0 {
		fmt.Fprintf(b, "- **Impact:** %s\n", strings.Join(impact, " · "))
	}
	fmt.Fprintf(b, "- **Start:** %s — %s, %s\n", stamp(in.Start), What(in.firstSign.Kind), cell(Where(&in.firstSign)))
	if in.Detected != nil {
		fmt.Fprintf(b, "- **Detected:** %s%s — alert firing, %s\n", stamp(*in.Detected), after(*in.Detected), cell(Where(&in.detectedBy)))
	} else if in.Paged {
		b.WriteString("- **Detected:** before this range (widen it to see the start)\n")
	}
	switch {
	case in.Notified != nil:
		via := ""
		if len(in.notifiers) > 0 {
			via = " via " + cell(strings.Join(in.notifiers, ", "))
		}
		fmt.Fprintf(b, "- **Notified:** %s%s%s\n", stamp(*in.Notified), after(*in.Notified), via)
		if in.notifyFails > 0 {
			fmt.Fprintf(b, "- **Failed deliveries:** %d\n", in.notifyFails)
		}
	case in.notifyFails > 0:
		fmt.Fprintf(b, "- **Notified:** never; %d failed deliveries\n", in.notifyFails)
	case in.Paged:
		b.WriteString("- **Notified:** no notification recorded\n")
	}
	if in.Resolved != nil {
		fmt.Fprintf(b, "- **Resolved:** %s\n", stamp(*in.Resolved))
	} else {
		b.WriteString("- **Resolved:** not yet\n")
	}
	fmt.Fprintf(b, "- **Duration:** %s\n\n", durationText(in))
	writeTable(b, Fold(in.events, gap), stamp, loc)
}

func writeTable(b *strings.Builder, rows []Row, stamp func(time.Time) string, loc *time.Location) {
	b.WriteString("| Time | What | Where | Detail |\n|---|---|---|---|\n")
	for i := range rows {
		r := &rows[i]
		when := stamp(r.First)
		if r.Count() > 1 {
			if sameDay(r.First.In(loc), r.Last.In(loc)) {
				when += "–" + r.Last.In(loc).Format("15:04:05")
			} else {
				when += "–" + stamp(r.Last)
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", when, cell(r.what()), cell(r.Where), cell(r.detail()))
	}
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

func zoneName(loc *time.Location, at time.Time) string {
	name := loc.String()
	if name == "Local" {
		z, _ := at.In(loc).Zone()
		return z + " (local time)"
	}
	return name
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	const maxLen = 300
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxLen {
		s = string(r[:maxLen-1]) + "…"
	}
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "<", "&lt;")
	return s
}

// Document is the JSON form of a timeline (see docs/api.md).
type Document struct {
	Since    time.Time       `json:"since"`
	Until    time.Time       `json:"until"`
	Timezone string          `json:"timezone"`
	Events   []storage.Event `json:"events"`
	// Incidents are the paged incidents (all of them with Options.All),
	// each listing its events by ID.
	Incidents []Incident `json:"incidents"`
}

// JSON writes the events of [since, until] as a Document; times are
// RFC 3339 in the given location.
func JSON(w io.Writer, events []storage.Event, since, until time.Time, o Options) error {
	doc, err := NewDocument(events, since, until, o)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// NewDocument builds the JSON document with times in o.Location. With
// o.Incident it holds that incident and its events only.
func NewDocument(events []storage.Event, since, until time.Time, o Options) (Document, error) {
	loc := o.loc()
	v, err := newView(events, until, o)
	if err != nil {
		return Document{}, err
	}
	incs := v.shown
	if o.All {
		incs = append(append([]*Incident(nil), v.shown...), v.quiet...)
		sort.SliceStable(incs, func(i, j int) bool { return incs[i].Start.Before(incs[j].Start) })
	}
	if v.single != nil {
		incs, events = []*Incident{v.single}, v.single.events
	}
	in := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		x := t.In(loc)
		return &x
	}
	doc := Document{Since: since.In(loc), Until: until.In(loc), Timezone: loc.String(),
		Events: make([]storage.Event, len(events)), Incidents: make([]Incident, 0, len(incs))}
	for i, e := range events {
		e.Time = e.Time.In(loc)
		doc.Events[i] = e
	}
	for _, x := range incs {
		c := *x
		c.Start, c.Detected, c.Notified, c.Resolved = x.Start.In(loc), in(x.Detected), in(x.Notified), in(x.Resolved)
		doc.Incidents = append(doc.Incidents, c)
	}
	return doc, nil
}
