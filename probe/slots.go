package probe

import (
	"context"
	"time"
)

// Slotted is implemented by kinds that run only a few probes at once: the
// browser drives one Chromium with --browser.max-concurrent pages.
type Slotted interface {
	Slots() int
}

// Slots bounds in-flight runs per check type for Slotted kinds. A run
// takes its slot before its timeout starts, so time spent queueing for a
// free browser is never charged to the check as a timeout.
type Slots struct {
	sems map[string]chan struct{}
}

// NewSlots reads the limits of the Slotted kinds among probers.
func NewSlots(probers map[string]Prober) *Slots {
	s := &Slots{sems: map[string]chan struct{}{}}
	for typ, p := range probers {
		if sp, ok := p.(Slotted); ok && sp.Slots() > 0 {
			s.sems[typ] = make(chan struct{}, sp.Slots())
		}
	}
	return s
}

// Acquire waits for a slot of typ; release gives it back. Types without a
// limit return at once. ok is false when ctx ended first.
func (s *Slots) Acquire(ctx context.Context, typ string) (release func(), ok bool) {
	sem := s.sems[typ]
	if sem == nil {
		return func() {}, true
	}
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-ctx.Done():
		return nil, false
	}
}

// Preparer is implemented by kinds whose runs need preparation that says
// nothing about the target: the browser checks its shared Chromium and
// opens a tab, which under CPU load can take seconds. The run's context
// allows PrepareTimeout on top of the check's timeout, and the kind starts
// the check's timeout itself once it is ready, so a slow tab is never
// charged to the journey.
type Preparer interface {
	PrepareTimeout() time.Duration
}

// RunTimeout is how long the context of one run of t on p lasts: the
// check's timeout, plus the preparation bound of a Preparer.
func RunTimeout(p Prober, t *Target) time.Duration {
	d := time.Duration(t.Check.Timeout)
	if pp, ok := p.(Preparer); ok {
		d += pp.PrepareTimeout()
	}
	return d
}
