package demo

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrUnknownTarget is returned for a fault target that is neither a node
// nor one of the shop's domains.
var ErrUnknownTarget = errors.New("unknown fault target")

// faultState is an immutable snapshot: the hot path does one atomic load
// and one slice index per request.
type faultState struct {
	targets map[string]Fault
	// eff is the fault in force per endpoint: its own target's fault, else
	// its domain's (a node's own fault replaces the www.shop.test one).
	eff []*Fault
	// dnsRemoved is per endpoint; only nodes can be removed.
	dnsRemoved []bool
}

func (s *Shop) buildState(targets map[string]Fault) *faultState {
	st := &faultState{
		targets:    targets,
		eff:        make([]*Fault, len(s.endpoints)),
		dnsRemoved: make([]bool, len(s.endpoints)),
	}
	for i, ep := range s.endpoints {
		f, ok := targets[ep.target]
		if !ok {
			f, ok = targets[ep.domain]
		}
		if ok && !f.IsZero() {
			st.eff[i] = &f
		}
		if own, ok := targets[ep.target]; ok && ep.node {
			st.dnsRemoved[i] = own.DNSRemove
		}
	}
	return st
}

// Targets lists every valid fault target: the node names, then the domains.
func (s *Shop) Targets() []string {
	var t []string
	for _, n := range s.opts.Nodes {
		t = append(t, n.Name)
	}
	return append(t, WWWHost, APIHost, StaticHost)
}

func (s *Shop) checkTarget(target string, f Fault) error {
	if !slices.Contains(s.Targets(), target) {
		return fmt.Errorf("%w %q (known: %s)", ErrUnknownTarget, target, strings.Join(s.Targets(), ", "))
	}
	if f.DNSRemove && (target == WWWHost || target == APIHost || target == StaticHost) {
		return fmt.Errorf("dns_remove applies to a single node, not to %s", target)
	}
	return f.Validate()
}

// SetFault puts f in force on target (a node name such as "lb2" or a
// domain; www.shop.test means all its nodes). The zero Fault clears it.
func (s *Shop) SetFault(target string, f Fault) error {
	target = strings.ToLower(strings.TrimSpace(target))
	if err := s.checkTarget(target, f); err != nil {
		return err
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	next := maps.Clone(s.faults.Load().targets)
	if f.IsZero() {
		delete(next, target)
	} else {
		next[target] = f
	}
	st := s.buildState(next)
	s.faults.Store(st)
	if err := s.applyRefusals(st); err != nil {
		s.log.Error().Err(err).Str("target", target).Msg("demo fault: listeners")
		return err
	}
	s.log.Info().Str("target", target).Str("fault", f.String()).Msg("demo fault set")
	return nil
}

// ClearFault removes the fault on target.
func (s *Shop) ClearFault(target string) error { return s.SetFault(target, Fault{}) }

// ClearAll removes every fault.
func (s *Shop) ClearAll() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	st := s.buildState(map[string]Fault{})
	s.faults.Store(st)
	if err := s.applyRefusals(st); err != nil {
		s.log.Error().Err(err).Msg("demo faults cleared, but a listener did not reopen")
		return
	}
	s.log.Info().Msg("demo faults cleared")
}

// Faults is a copy of the faults in force, by target.
func (s *Shop) Faults() map[string]Fault {
	return maps.Clone(s.faults.Load().targets)
}
