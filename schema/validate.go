package schema

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Validate checks a decoded document (as yaml.v3 or encoding/json decode
// into `any`: maps, slices, strings, numbers, bools, nil) against s, a root
// schema whose $refs point into its own $defs. It supports exactly the
// keywords Schema has. Every problem is one error naming its JSON pointer.
func (s *Schema) Validate(doc any) error {
	v := &validator{root: s, res: map[string]*regexp.Regexp{}}
	v.check(s, doc, "")
	return errors.Join(v.errs...)
}

type validator struct {
	root *Schema
	res  map[string]*regexp.Regexp // compiled patterns, shared with sub-validators
	errs []error
}

func (v *validator) fail(at, format string, args ...any) {
	if at == "" {
		at = "/"
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s", at, fmt.Sprintf(format, args...)))
}

func (v *validator) re(p string) (*regexp.Regexp, error) {
	if r, ok := v.res[p]; ok {
		return r, nil
	}
	r, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	v.res[p] = r
	return r, nil
}

// valid reports whether doc satisfies s, without recording errors (anyOf).
func (v *validator) valid(s *Schema, doc any, at string) bool {
	sub := &validator{root: v.root, res: v.res}
	sub.check(s, doc, at)
	return len(sub.errs) == 0
}

func (v *validator) check(s *Schema, doc any, at string) {
	if s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/$defs/")
		def := v.root.Defs[name]
		if !ok || def == nil {
			v.fail(at, "unresolvable $ref %q", s.Ref)
			return
		}
		v.check(def, doc, at)
	}
	if len(s.AnyOf) > 0 {
		ok := false
		for _, alt := range s.AnyOf {
			if v.valid(alt, doc, at) {
				ok = true
				break
			}
		}
		if !ok {
			// The most useful message is the alternative matching the type.
			for _, alt := range s.AnyOf {
				if typeOK(v.resolve(alt), doc) {
					v.check(alt, doc, at)
					return
				}
			}
			v.fail(at, "%s matches none of the allowed forms", kindOf(doc))
			return
		}
	}
	if s.Type != nil && !typeOK(s, doc) {
		v.fail(at, "expected %s, got %s", typeNames(s.Type), kindOf(doc))
		return
	}
	if len(s.Enum) > 0 && !inEnum(s.Enum, doc) {
		v.fail(at, "%s is not one of %s", render(doc), renderEnum(s.Enum))
	}
	switch d := doc.(type) {
	case string:
		if s.MinLength != nil && len([]rune(d)) < *s.MinLength {
			v.fail(at, "string shorter than %d", *s.MinLength)
		}
		if s.Pattern != "" {
			re, err := v.re(s.Pattern)
			if err != nil {
				v.fail(at, "schema pattern %q: %v", s.Pattern, err)
			} else if !re.MatchString(d) {
				v.fail(at, "%q does not match %s", d, s.Pattern)
			}
		}
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := d[r]; !ok {
				v.fail(at, "missing required key %q", r)
			}
		}
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := at + "/" + escapePointer(k)
			if ps, ok := s.Properties[k]; ok {
				v.check(ps, d[k], p)
				continue
			}
			switch ap := s.AdditionalProperties.(type) {
			case bool:
				if !ap {
					v.fail(p, "unknown key %q", k)
				}
			case *Schema:
				v.check(ap, d[k], p)
			}
		}
	case []any:
		if s.Items != nil {
			for i, e := range d {
				v.check(s.Items, e, at+"/"+strconv.Itoa(i))
			}
		}
	}
	if s.Minimum != nil {
		if f, ok := number(doc); ok && f < *s.Minimum {
			v.fail(at, "%v is less than %v", f, *s.Minimum)
		}
	}
}

func (v *validator) resolve(s *Schema) *Schema {
	for i := 0; s.Ref != "" && i < 10; i++ {
		d := v.root.Defs[strings.TrimPrefix(s.Ref, "#/$defs/")]
		if d == nil {
			break
		}
		s = d
	}
	return s
}

func escapePointer(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func typeNames(t any) string {
	switch t := t.(type) {
	case string:
		return t
	case []string:
		return strings.Join(t, " or ")
	}
	return fmt.Sprint(t)
}

// typeOK reports whether doc has one of s's types (true without a type).
func typeOK(s *Schema, doc any) bool {
	var ts []string
	switch t := s.Type.(type) {
	case nil:
		return true
	case string:
		ts = []string{t}
	case []string:
		ts = t
	case []any: // a schema read back from JSON
		for _, x := range t {
			ts = append(ts, fmt.Sprint(x))
		}
	}
	for _, t := range ts {
		if hasType(t, doc) {
			return true
		}
	}
	return false
}

func hasType(t string, doc any) bool {
	switch t {
	case "object":
		_, ok := doc.(map[string]any)
		return ok
	case "array":
		_, ok := doc.([]any)
		return ok
	case "string":
		_, ok := doc.(string)
		return ok
	case "boolean":
		_, ok := doc.(bool)
		return ok
	case "null":
		return doc == nil
	case "number":
		_, ok := number(doc)
		return ok
	case "integer":
		f, ok := number(doc)
		return ok && f == math.Trunc(f)
	}
	return false
}

func number(doc any) (float64, bool) {
	switch n := doc.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func kindOf(doc any) string {
	switch doc.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	if _, ok := number(doc); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", doc)
}

// inEnum compares numbers by value, so 4 (int from YAML) equals 4 (float
// from JSON).
func inEnum(enum []any, doc any) bool {
	for _, e := range enum {
		if ef, ok := number(e); ok {
			if df, ok := number(doc); ok && ef == df {
				return true
			}
			continue
		}
		if e == doc {
			return true
		}
	}
	return false
}

func render(doc any) string {
	if s, ok := doc.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(doc)
}

func renderEnum(enum []any) string {
	parts := make([]string, len(enum))
	for i, e := range enum {
		parts[i] = render(e)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
