package httpprobe

import (
	"sync"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
)

// planGeneration is how long a plan stays cached without being used: two
// generations. A check probed less often than that is compiled again
// (microseconds, once per run at such an interval).
const planGeneration = 2 * time.Minute

// planCache maps checks to their compiled plans.
//
// It holds plans and checks strongly, in two generations rotated every
// planGeneration, so the checks of a config replaced by a reload, no
// longer probed, are dropped within two generations. It does not use weak
// pointers (internal/ptrcache) because a config's checks all live in one
// large slice: every weak pointer and cleanup into that one allocation is
// a runtime "special" on the same span, and adding one scans them all, so
// caching a plan per check cost time quadratic in the number of checks
// (at 100,000 checks, most of two cores for minutes after every start).
type planCache struct {
	now func() time.Time // monotonic clock; time.Now when nil

	mu        sync.RWMutex
	cur, prev map[*checks.Check]*plan
	rotated   time.Time
}

// get returns c's plan, keeping it for another generation.
func (pc *planCache) get(c *checks.Check) (*plan, bool) {
	now := pc.clock()
	pc.mu.RLock()
	pl, ok := pc.cur[c]
	due := now.Sub(pc.rotated) >= planGeneration
	pc.mu.RUnlock()
	if ok && !due {
		return pl, true
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.rotateLocked()
	if pl, ok = pc.cur[c]; ok {
		return pl, true
	}
	if pl, ok = pc.prev[c]; ok {
		pc.cur[c] = pl
	}
	return pl, ok
}

// put stores pl for c unless a plan is there already, and returns the
// cached one.
func (pc *planCache) put(c *checks.Check, pl *plan) *plan {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.rotateLocked()
	if old, ok := pc.cur[c]; ok {
		return old
	}
	pc.cur[c] = pl
	return pl
}

func (pc *planCache) clock() time.Time {
	if pc.now != nil {
		return pc.now()
	}
	return time.Now()
}

func (pc *planCache) rotateLocked() {
	now := pc.clock()
	if pc.cur == nil {
		pc.cur, pc.rotated = map[*checks.Check]*plan{}, now
		return
	}
	if now.Sub(pc.rotated) >= planGeneration {
		pc.prev, pc.cur, pc.rotated = pc.cur, make(map[*checks.Check]*plan, len(pc.cur)), now
	}
}

// len counts the checks held (for tests).
func (pc *planCache) len() int {
	pc.mu.RLock()
	defer pc.mu.RUnlock()
	n := len(pc.cur)
	for c := range pc.prev {
		if _, ok := pc.cur[c]; !ok {
			n++
		}
	}
	return n
}
