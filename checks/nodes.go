package checks

import "gopkg.in/yaml.v3"

// walk follows path (string keys and int list indexes) from the mapping of
// the struct at p. It returns the node reached (nil if the path is absent),
// the key node of the last string step, and the position of the deepest
// node found on the way, so errors always have somewhere to point.
func (l *loader) walk(p Pos, path ...any) (n, key *yaml.Node, deepest Pos) {
	n = l.maps[p]
	deepest = p
	if n == nil {
		return nil, nil, p
	}
	for _, step := range path {
		key = nil
		switch s := step.(type) {
		case string:
			key, n = lookup(n, s)
		case int:
			n = deref(n)
			if n != nil && n.Kind == yaml.SequenceNode && s >= 0 && s < len(n.Content) {
				n = deref(n.Content[s])
			} else {
				n = nil
			}
		}
		if n == nil {
			return nil, nil, deepest
		}
		deepest = Pos{File: p.File, Line: n.Line, Col: n.Column}
	}
	return n, key, deepest
}

// at is the position of the value at path below the struct at p.
func (l *loader) at(p Pos, path ...any) Pos {
	_, _, d := l.walk(p, path...)
	return d
}

// keyAt is the position of the key that ends path (for errors about a key
// itself), else the best position found.
func (l *loader) keyAt(p Pos, path ...any) Pos {
	_, k, d := l.walk(p, path...)
	if k != nil {
		return Pos{File: p.File, Line: k.Line, Col: k.Column}
	}
	return d
}

// has reports whether key is present in the struct at p.
func (l *loader) has(p Pos, key string) bool {
	n, _, _ := l.walk(p, key)
	return n != nil
}
