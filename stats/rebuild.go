package stats

import "github.com/vantage-monitoring/vantage/probe"

// Rebuild implements probe.Rebuilder: a target rebuilt by a reload under
// the same key keeps its windows, so the alerts on a check that stays down
// see no gap when the check is edited. Its labels follow the new target.
func (s *Stats) Rebuild(old, nt *probe.Target) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.targets[old.Key]; ts != nil {
		ts.t.CompareAndSwap(old, nt)
	}
}
