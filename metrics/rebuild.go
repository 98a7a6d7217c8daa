package metrics

import (
	"slices"

	"github.com/vantage-monitoring/vantage/probe"
)

// Rebuild implements probe.Rebuilder: a target rebuilt by a reload under
// the same key keeps its series while its label values are unchanged, so
// they do not vanish from /metrics until its next run; new label values
// mean new series, and the old ones go.
func (c *Collector) Rebuild(old, nt *probe.Target) {
	c.mu.RLock()
	s := c.set
	c.mu.RUnlock()
	s.mu.Lock()
	ch := s.children[old.Key]
	same := ch != nil && slices.Equal(ch.values, s.lab.Values(nt))
	s.mu.Unlock()
	if !same {
		c.Forget(old)
	}
}
