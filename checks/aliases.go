package checks

import "gopkg.in/yaml.v3"

// guardAliases rejects YAML that the loader could not walk safely: an alias
// or merge key (`<<: *g`) that refers to a node containing it, which would
// recurse forever, and files that amount to more than Limits.MaxYAMLNodes
// nodes once every alias is followed: the loader walks aliased nodes again
// at each use, so a "billion laughs" file of a few lines would otherwise
// take minutes and gigabytes (10,000 checks with shared anchors come to
// about 300,000).
// Offending aliases are replaced by null so decoding can go on and report
// every other problem; the file is rejected either way. It returns false when
// the file is too large to decode at all.
func (l *loader) guardAliases(root *yaml.Node) bool {
	const (
		white = iota // not seen
		grey         // on the current path
		black        // done; its expanded size is known
	)
	state := map[*yaml.Node]int{}
	size := map[*yaml.Node]int{}
	tooBig := false
	var visit func(n *yaml.Node) int
	visit = func(n *yaml.Node) int {
		switch state[n] {
		case grey:
			return 0 // reported by the alias that closed the cycle
		case black:
			return size[n]
		}
		state[n] = grey
		total := 1
		for _, c := range n.Content {
			if c.Kind == yaml.AliasNode && c.Alias != nil {
				if state[c.Alias] == grey {
					l.errAt(l.pos(c), "alias *%s refers to a node that contains it (recursive YAML is not supported)", c.Value)
					nullify(c)
					continue
				}
				total += visit(c.Alias)
			} else {
				total += visit(c)
			}
			if total > l.lim.MaxYAMLNodes {
				total = l.lim.MaxYAMLNodes + 1
				if !tooBig {
					tooBig = true
					l.errAt(l.pos(c), "this file expands to more than %d YAML nodes with its aliases followed (raise the limit with --%s)",
						l.lim.MaxYAMLNodes, FlagMaxYAMLNodes)
				}
			}
		}
		state[n] = black
		size[n] = total
		return total
	}
	visit(root)
	return !tooBig
}

// nullify turns an alias node into an explicit null in place.
func nullify(n *yaml.Node) {
	n.Kind = yaml.ScalarNode
	n.Tag = "!!null"
	n.Value = ""
	n.Alias = nil
	n.Content = nil
}
