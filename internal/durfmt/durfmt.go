// Package durfmt renders durations for people. There is one function;
// the Style says which of the few notations vantage shows a duration in,
// and each style's output is promised by tests and docs, so a new use
// picks an existing style rather than adding a format.
package durfmt

import (
	"strconv"
	"strings"
	"time"
)

// Style is a notation for Format.
type Style int

const (
	// Elapsed is how long something lasted: 45s, 7m12s, 10m, 2h5m, 2h.
	// It rounds to the second below an hour and to the minute from an
	// hour up, and drops zero parts. The timeline's incident durations
	// and offsets ("+2m1s").
	Elapsed Style = iota
	// Coarse is Elapsed in whole minutes from a minute up: 45s, 7m, 2h5m.
	// Alert resolutions ("resolved after 7m") and window phrases ("in the
	// last 30m"), where the seconds are noise.
	Coarse
	// Stored is Elapsed as Go's time.Duration prints it: milliseconds
	// below a second and zero parts kept below an hour (250ms, 45s, 7m0s,
	// 2h5m). The "down for 7m0s" detail of target_up events, the text
	// stored events already carry.
	Stored
	// Setting is how a config writes a timeout: 5s, 1.5s, 250ms, to 10ms
	// from a second up and to the millisecond below. Reasons that compare
	// a run with its timeout or max_duration.
	Setting
	// Measured is a timing with three significant figures: 850µs, 12.3ms,
	// 250ms, 1.23s, and whole seconds from 100s (2m5s). The status page.
	Measured
)

// Format renders d in style s.
func Format(d time.Duration, s Style) string {
	switch s {
	case Setting:
		switch {
		case d >= time.Second:
			return d.Round(10 * time.Millisecond).String()
		case d >= time.Millisecond:
			return d.Round(time.Millisecond).String()
		}
		return d.String()
	case Measured:
		return measured(d)
	case Stored:
		switch {
		case d < time.Second:
			return d.Round(time.Millisecond).String()
		case d < time.Hour:
			return d.Round(time.Second).String()
		}
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	switch {
	case d < time.Minute:
		d = d.Round(time.Second)
	case d < time.Hour && s == Elapsed:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Minute)
	}
	return dropZeros(d)
}

// dropZeros prints a whole number of seconds as hours, minutes and
// seconds without the parts that are zero ("2h", "7m", "2h5m").
func dropZeros(d time.Duration) string {
	if d < time.Second {
		return d.String() // "0s", or a negative duration
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}

func measured(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 0.001:
		return strconv.FormatFloat(s*1e6, 'f', 0, 64) + "µs"
	case s < 0.1:
		return strconv.FormatFloat(s*1e3, 'f', 1, 64) + "ms"
	case s < 1:
		return strconv.FormatFloat(s*1e3, 'f', 0, 64) + "ms"
	case s < 100:
		return strconv.FormatFloat(s, 'f', 2, 64) + "s"
	}
	return d.Round(time.Second).String()
}
