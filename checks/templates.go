package checks

import (
	"fmt"
	"math"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// AnnotationFuncs are the functions alert annotation templates may call.
// The loader parses annotations with them, so the alerting engine must
// execute annotations with the same set (use this function).
func AnnotationFuncs() template.FuncMap {
	return template.FuncMap{
		"toUpper": strings.ToUpper,
		"toLower": strings.ToLower,
		// humanize renders a number with an SI prefix: 1.5k, 2.3M, 450m.
		"humanize": func(v float64) string {
			if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Sprintf("%.4g", v)
			}
			prefixes := []struct {
				f float64
				s string
			}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}, {1e-3, "m"}, {1e-6, "u"}}
			for _, p := range prefixes {
				if math.Abs(v) >= p.f {
					return fmt.Sprintf("%.4g%s", v/p.f, p.s)
				}
			}
			return fmt.Sprintf("%.4g", v)
		},
		// humanizeDuration renders seconds as a Go duration: 1.5s, 2m3s.
		"humanizeDuration": func(seconds float64) string {
			if math.IsNaN(seconds) || math.IsInf(seconds, 0) {
				return fmt.Sprintf("%.4g", seconds)
			}
			d := time.Duration(seconds * float64(time.Second))
			switch {
			case d >= time.Second:
				return d.Round(time.Millisecond).String()
			case d >= time.Millisecond:
				return d.Round(time.Microsecond).String()
			}
			return d.String()
		},
		// humanizePercentage renders a ratio as a percentage: 0.953 -> 95.3%.
		"humanizePercentage": func(v float64) string { return fmt.Sprintf("%.4g%%", v*100) },
	}
}

// boundedAnnotation rejects annotation templates whose rendering time is
// not bounded by their length and the alert's labels: they are rendered at
// every state change while the alerting engine holds its lock, so
// `{{range 99999999999}}`, nested ranges over the labels or a template that
// calls itself would stall all alerting.
func boundedAnnotation(t *template.Template) error {
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		if err := walkBounded(tt.Tree.Root, false); err != nil {
			return fmt.Errorf("%s:%w", tt.Tree.ParseName, err)
		}
	}
	return nil
}

func walkBounded(n parse.Node, inRange bool) error {
	var lists []*parse.ListNode
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := walkBounded(c, inRange); err != nil {
				return err
			}
		}
		return nil
	case *parse.IfNode:
		lists = []*parse.ListNode{n.List, n.ElseList}
	case *parse.WithNode:
		lists = []*parse.ListNode{n.List, n.ElseList}
	case *parse.RangeNode:
		if inRange {
			return fmt.Errorf("%d: range inside range is not supported in annotations", n.Line)
		}
		if !dataRef(n.Pipe) {
			return fmt.Errorf("%d: range over %s is not supported in annotations (range over ., $ or a field)", n.Line, n.Pipe)
		}
		inRange = true
		lists = []*parse.ListNode{n.List, n.ElseList}
	case *parse.TemplateNode:
		return fmt.Errorf("%d: calling templates (%s) is not supported in annotations", n.Line, n)
	}
	for _, l := range lists {
		if err := walkBounded(l, inRange); err != nil {
			return err
		}
	}
	return nil
}

// dataRef reports whether a pipeline is just ., $ or a field of them: what
// it ranges over is then the alert's data, not a number of any size.
func dataRef(p *parse.PipeNode) bool {
	if p == nil || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return false
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.DotNode, *parse.FieldNode:
		return true
	case *parse.VariableNode:
		return a.Ident[0] == "$"
	}
	return false
}
