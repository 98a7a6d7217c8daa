package stats

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// subWindows is how many sub-windows a window is cut into. More means a
// smoother slide but more memory and a slower read; 10 keeps the part of a
// window that may be missing at read time at 10 %.
const subWindows = 10

// slot is one closed (or the current) sub-window of a ring.
type slot struct {
	epoch     int64  // sub-window number since the Unix epoch; valid when total > 0 or enc != nil
	ok, total uint32 // successful runs and all runs
	// enc is the sub-window's DDSketch in sketches-go's compact binary
	// encoding once the sub-window has closed. Closed sub-windows never
	// change, so keeping them encoded (a few bytes per occupied bin)
	// instead of as live stores (pages of float64 counts) is what keeps a
	// series-window within a few KiB whatever the probe rate.
	enc []byte
}

// ring is one window of one series: subWindows slots aligned on the wall
// clock, plus the bins of the current sub-window.
type ring struct {
	window time.Duration
	width  int64 // sub-window width in ns
	slots  [subWindows]slot

	// live is the current sub-window's latency sketch as its occupied bins,
	// sorted by index (zeroBin first): a few bins take a few bytes where a
	// live DDSketch with its stores took ~300 bytes per ring even when
	// empty, which at 100,000 targets with two windows was ~60 MB.
	live      []liveBin
	liveEpoch int64
}

// liveBin is one occupied bin of a sketch: its index (zeroBin for the
// sketch's zero count) and count.
type liveBin struct {
	index int32
	count uint32
}

// zeroBin is the index under which live counts zero durations.
const zeroBin = math.MinInt32

func newRing(window time.Duration) *ring {
	w := int64(window) / subWindows
	if w < 1 {
		w = 1
	}
	return &ring{window: window, width: w}
}

func (r *ring) epoch(now int64) int64 {
	e := now / r.width
	if now < 0 && now%r.width != 0 {
		e--
	}
	return e
}

// advance closes the live sub-window if e is a later one and returns the
// slot for e, emptied if it held an older sub-window. A closed
// sub-window's bins are encoded with sk, a scratch sketch of the series'
// mapping.
func (r *ring) advance(e int64, sk *ddsketch.DDSketch) *slot {
	if e < r.liveEpoch {
		// The clock went back: count the run in the current sub-window
		// rather than rewrite closed ones.
		e = r.liveEpoch
	}
	if e != r.liveEpoch {
		if len(r.live) > 0 {
			s := &r.slots[mod(r.liveEpoch)]
			sk.Clear()
			addBins(sk, r.live)
			s.enc = s.enc[:0]
			sk.Encode(&s.enc, true)
			sk.Clear()
			r.live = r.live[:0]
		}
		r.liveEpoch = e
	}
	s := &r.slots[mod(e)]
	if s.epoch != e {
		*s = slot{epoch: e, enc: s.enc[:0]}
	}
	return s
}

// addBins adds bins to sk.
func addBins(sk *ddsketch.DDSketch, bins []liveBin) {
	for _, b := range bins {
		if b.index == zeroBin {
			_ = sk.AddWithCount(0, float64(b.count)) // zero is always trackable
		} else {
			sk.GetPositiveValueStore().AddWithCount(int(b.index), float64(b.count))
		}
	}
}

func mod(e int64) int {
	m := e % subWindows
	if m < 0 {
		m += subWindows
	}
	return int(m)
}

// observe records one run at now (ns). Only successful runs feed the
// latency sketch; every run counts toward the success ratio. index is the
// sketch bin of a successful run's duration, computed once for all rings,
// or noIndex for a zero duration. sk is advance's scratch sketch.
func (r *ring) observe(now int64, index int, ok bool, sk *ddsketch.DDSketch) {
	s := r.advance(r.epoch(now), sk)
	s.total++
	if ok {
		s.ok++
		i := int32(zeroBin)
		if index != noIndex {
			i = int32(index)
		}
		j, found := slices.BinarySearchFunc(r.live, i, func(b liveBin, i int32) int { return cmp.Compare(b.index, i) })
		if found {
			r.live[j].count++
		} else {
			r.live = slices.Insert(r.live, j, liveBin{i, 1})
		}
	}
}

// noIndex marks a zero duration, which DDSketch counts apart from bins.
const noIndex = math.MinInt

// read merges the sub-windows that lie within the window ending at now into
// sk (which must be empty) and returns the run counts over them.
//
// The window covers the current, partial sub-window and the subWindows-1
// before it, so a read sees between 90 % and 100 % of the window: nothing
// older than the window is ever included, and everything younger than 90 %
// of it always is.
func (r *ring) read(now int64, sk *ddsketch.DDSketch) (ok, total uint64) {
	return r.readLast(now, subWindows, sk)
}

// readLast is read over the newest n sub-windows only (the current one
// included).
func (r *ring) readLast(now int64, n int, sk *ddsketch.DDSketch) (ok, total uint64) {
	cur := r.epoch(now)
	for i := range r.slots {
		s := &r.slots[i]
		if s.epoch > cur || s.epoch <= cur-int64(n) || (s.total == 0 && len(s.enc) == 0) {
			continue
		}
		ok += uint64(s.ok)
		total += uint64(s.total)
		if s.epoch == r.liveEpoch {
			addBins(sk, r.live)
		} else if len(s.enc) > 0 {
			_ = sk.DecodeAndMergeWith(s.enc) // our own encoding: cannot fail
		}
	}
	return ok, total
}
