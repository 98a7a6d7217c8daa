package checks

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
)

// nodeNameRE is the alphabet of node names, from `{name: lb2, address: …}`
// or node_names: the check-name one, so a name is a plain label value and
// can never be mistaken for an IP address (no dots, no colons).
var nodeNameRE = checkNameRE

// checkNodeName reports a name that is not a valid node name, at p.
func (l *loader) checkNodeName(name string, p Pos, at Pos, path ...any) bool {
	if nodeNameRE.MatchString(name) {
		return true
	}
	l.errAt(at, "invalid node name %s (must match ^[a-z0-9_-]+$)", l.q(name, p, path...))
	return false
}

// finishNodeNames validates the node_names map of the struct at p and
// returns it keyed by canonical IP, with where each name was given. Every
// address must be an IP; every name valid and used for one address only.
func (l *loader) finishNodeNames(p Pos, m map[string]string) (map[string]string, map[string]Pos) {
	if len(m) == 0 {
		return nil, nil
	}
	// File order, so "first defined at" points at the earlier entry.
	keys := slices.Sorted(maps.Keys(m))
	slices.SortStableFunc(keys, func(a, b string) int {
		pa, pb := l.keyAt(p, "node_names", a), l.keyAt(p, "node_names", b)
		return cmp.Or(cmp.Compare(pa.Line, pb.Line), cmp.Compare(pa.Col, pb.Col))
	})
	out := make(map[string]string, len(m))
	at := make(map[string]Pos, len(m))
	addrs, names := map[string]Pos{}, map[string]Pos{}
	for _, k := range keys {
		name := m[k]
		kp, vp := l.keyAt(p, "node_names", k), l.at(p, "node_names", k)
		ip, err := netip.ParseAddr(k)
		if err != nil {
			l.errAt(kp, "invalid node_names address %q (want an IP address)", k)
			continue
		}
		if !l.checkNodeName(name, p, vp, "node_names", k) {
			continue
		}
		addr := ip.String()
		if first, dup := addrs[addr]; dup {
			l.errAt(kp, "duplicate node_names address %q (%s)", addr, firstDef(first, kp))
			continue
		}
		addrs[addr] = kp
		if first, dup := names[name]; dup {
			l.errAt(vp, "duplicate node name %q (%s)", name, firstDef(first, vp))
			continue
		}
		names[name] = vp
		out[addr], at[addr] = name, vp
	}
	return out, at
}

// finishCheckNodeNames merges global.node_names (global, with positions
// globalAt) into the check's own, names the check's listed addresses that
// have no name, and stores the result in c.NodeNames (nil without nodes).
func (l *loader) finishCheckNodeNames(c *Check, global map[string]string, globalAt map[string]Pos) {
	p := c.Pos
	if p.Line == 0 {
		return
	}
	own, ownAt := l.finishNodeNames(p, c.NodeNames)
	if c.Nodes == nil {
		if l.has(p, "node_names") {
			l.warnAt(l.keyAt(p, "node_names"), "node_names has no effect on a check without nodes")
		}
		c.NodeNames = nil
		return
	}
	merged := global // shared and never written to when the check adds nothing
	if len(own) > 0 {
		// A global name the check keeps must not also name another of its
		// own addresses.
		kept := map[string]string{} // name -> global address
		for addr, name := range global {
			if _, over := own[addr]; !over {
				kept[name] = addr
			}
		}
		merged = maps.Clone(global)
		if merged == nil {
			merged = map[string]string{}
		}
		for _, addr := range slices.Sorted(maps.Keys(own)) {
			name := own[addr]
			if g, dup := kept[name]; dup {
				l.errAt(ownAt[addr], "duplicate node name %q (%s)", name, firstDef(globalAt[g], ownAt[addr]))
				continue
			}
			merged[addr] = name
		}
	}
	c.NodeNames = merged
	if len(merged) == 0 || c.Nodes.Pos.Line == 0 {
		return
	}
	// Listed addresses without a name take theirs from node_names; the
	// result must still name each node once.
	labels := map[string]Pos{}
	for _, a := range c.Nodes.Addresses {
		if a.Pos.Line != 0 {
			labels[a.Label()] = a.Pos
		}
	}
	for i := range c.Nodes.Addresses {
		a := &c.Nodes.Addresses[i]
		if a.Pos.Line == 0 || a.Name != "" {
			continue
		}
		ip, _, ok := splitIPPort(a.Address)
		if !ok {
			continue // reported by finishNodes
		}
		name := c.NodeName(ip)
		if name == "" {
			continue
		}
		if first, dup := labels[name]; dup {
			l.errAt(a.Pos, "duplicate node %q (%s; named by node_names)", name, firstDef(first, a.Pos))
			continue
		}
		a.Name = name
		labels[name] = a.Pos
	}
}
