package storage

import (
	"sort"
	"sync"
	"time"

	"github.com/vantage-monitoring/vantage/probe"
)

// DefaultMemoryRuns is how many successful runs per target that were not
// written to the database are kept in memory (see Options.MemoryRuns).
const DefaultMemoryRuns = 10

// memRun is a successful run kept in memory only: a success carries no
// reason, and its steps are not kept (nothing links to it by id), so two
// numbers are all there is to remember. 16 bytes, so 100,000 targets with
// 10 runs each cost about 16 MB.
type memRun struct {
	startNS int64
	dur     time.Duration
}

// targetRuns is the sink's per-target memory: the target (for RecentRuns;
// the scheduler holds it anyway until Forget), whether its last run failed
// (so the first success after a failure is stored), and a ring of recent
// successes not stored.
type targetRuns struct {
	t       *probe.Target
	failing bool
	next    int
	ring    []memRun // allocated at Options.MemoryRuns on the first success kept, then wraps
}

// memRuns holds the recent successful runs that live in memory only, by
// target key. It is shared by every Sink of a Store.
type memRuns struct {
	mu   sync.Mutex
	size int
	m    map[string]*targetRuns
}

func newMemRuns(size int) *memRuns { return &memRuns{size: size, m: map[string]*targetRuns{}} }

// observe updates t's memory with one finished run and reports whether the
// run must be stored. A plain run (a success that is neither a transition
// nor a browser run) is stored only when the target's previous run failed;
// otherwise it goes to the ring.
func (m *memRuns) observe(t *probe.Target, success, plain bool, start time.Time, dur time.Duration) (store bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tr := m.m[t.Key]
	if tr == nil {
		tr = &targetRuns{t: t}
		m.m[t.Key] = tr
	}
	tr.t = t // a reload may hand over a new Target for the same key
	wasFailing := tr.failing
	tr.failing = !success
	if !plain || wasFailing {
		return true
	}
	if m.size > 0 {
		r := memRun{startNS: start.UnixNano(), dur: dur}
		if tr.ring == nil {
			tr.ring = make([]memRun, 0, m.size)
		}
		if len(tr.ring) < m.size {
			tr.ring = append(tr.ring, r)
		} else {
			tr.ring[tr.next] = r
			tr.next = (tr.next + 1) % m.size
		}
	}
	return false
}

// rebuild hands a target rebuilt by a reload (same key) to its memory.
func (m *memRuns) rebuild(t *probe.Target) {
	m.mu.Lock()
	if tr := m.m[t.Key]; tr != nil {
		tr.t = t
	}
	m.mu.Unlock()
}

func (m *memRuns) forget(key string) {
	m.mu.Lock()
	delete(m.m, key)
	m.mu.Unlock()
}

// recent returns up to n of target's in-memory runs, newest first, as Runs
// with ID 0 (they have no row).
func (m *memRuns) recent(key string, n int) []Run {
	m.mu.Lock()
	defer m.mu.Unlock()
	tr := m.m[key]
	if tr == nil || n <= 0 {
		return nil
	}
	check, path, node := placeOf(tr.t)
	out := make([]Run, 0, min(n, len(tr.ring)))
	for i := 0; i < len(tr.ring) && len(out) < n; i++ {
		// newest is just before next (or the last appended while growing)
		j := (tr.next - 1 - i + 2*len(tr.ring)) % len(tr.ring)
		if len(tr.ring) < m.size {
			j = len(tr.ring) - 1 - i
		}
		r := tr.ring[j]
		out = append(out, Run{TargetKey: key, Check: check, Path: path, Node: node,
			Start: fromNanos(r.startNS), Duration: r.dur, Result: string(probe.Success)})
	}
	return out
}

// mergeRuns merges stored and in-memory runs (each newest first) into the n
// newest by start time; on equal start the stored run comes first.
func mergeRuns(stored, mem []Run, n int) []Run {
	if len(mem) == 0 {
		return stored
	}
	all := append(append(make([]Run, 0, len(stored)+len(mem)), stored...), mem...)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start.After(all[j].Start) })
	if len(all) > n {
		all = all[:n]
	}
	return all
}
