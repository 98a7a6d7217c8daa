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
	"strconv"
	"strings"
	"time"
	// --timezone must work in minimal containers without zoneinfo files.
	_ "time/tzdata"

	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/storage"
)

// DefaultSince is the range start when none is given.
const DefaultSince = "2h"

// DefaultGap is how far apart two similar events may be and still fold.
const DefaultGap = 5 * time.Minute

// flapMin is the fewest DOWN/UP events at one place that read as flapping;
// a single outage (DOWN then UP) stays two rows so its start and end show.
const flapMin = 4

// maxUnix is 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const maxUnix = 253402300799

// ParseTime reads an RFC 3339 time, a Unix timestamp in seconds, "now",
// or a Prometheus duration ("30m", "2h", "1d") meaning that long before
// now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, errors.New("empty time")
	case s == "now":
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return now.Add(-time.Duration(d)), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 {
		// RFC 3339, and so the API's JSON, ends at year 9999; past
		// 1<<63 seconds the conversion to int64 is undefined.
		if f >= maxUnix+1 {
			return time.Time{}, fmt.Errorf("invalid time %q: Unix timestamps end at %d (9999-12-31T23:59:59Z)", s, int64(maxUnix))
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
		if r := open[where]; r != nil && class(r.Kind) == class(e.Kind) && e.Time.Sub(r.Last) <= gap {
			r.Last = e.Time
			r.Counts[e.Kind]++
			r.Events = append(r.Events, e)
			continue
		}
		r := &Row{First: e.Time, Last: e.Time, Kind: e.Kind, Counts: map[storage.Kind]int{e.Kind: 1}, Where: where, Events: []storage.Event{e}}
		rows = append(rows, r)
		open[where] = r
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
		d := strings.TrimSpace(e.Detail)
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
	// Gap is the folding gap (default DefaultGap).
	Gap time.Duration
}

// Markdown writes events as a post-mortem section: a heading with the
// range, then a table of time, what, where and detail.
func Markdown(w io.Writer, events []storage.Event, since, until time.Time, o Options) error {
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	since, until = since.In(loc), until.In(loc)
	var b strings.Builder
	fmt.Fprintf(&b, "### Timeline %s – %s\n\n", since.Format("2006-01-02 15:04:05"), until.Format("2006-01-02 15:04:05 MST"))
	if len(events) == 0 {
		b.WriteString("No events in this range.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	oneDay := sameDay(since, until)
	stamp := func(t time.Time) string {
		if oneDay {
			return t.In(loc).Format("15:04:05")
		}
		return t.In(loc).Format("2006-01-02 15:04:05")
	}
	b.WriteString("| Time | What | Where | Detail |\n|---|---|---|---|\n")
	rows := Fold(events, o.Gap)
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
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", when, cell(r.what()), cell(r.Where), cell(r.detail()))
	}
	fmt.Fprintf(&b, "\nTimes in %s. %d events.\n", zoneName(loc, until), len(events))
	_, err := io.WriteString(w, b.String())
	return err
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
}

// JSON writes the events of [since, until] as a Document; times are
// RFC 3339 in the given location.
func JSON(w io.Writer, events []storage.Event, since, until time.Time, o Options) error {
	loc := o.Location
	if loc == nil {
		loc = time.Local
	}
	doc := NewDocument(events, since, until, loc)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// NewDocument builds the JSON document with times in loc.
func NewDocument(events []storage.Event, since, until time.Time, loc *time.Location) Document {
	evs := make([]storage.Event, len(events))
	for i, e := range events {
		e.Time = e.Time.In(loc)
		evs[i] = e
	}
	return Document{Since: since.In(loc), Until: until.In(loc), Timezone: loc.String(), Events: evs}
}
