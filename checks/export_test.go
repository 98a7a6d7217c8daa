package checks

import (
	"reflect"

	"gopkg.in/yaml.v3"
)

// Internals the tests (package checks_test, which may import the kinds)
// exercise directly.
var (
	ConfigKeys   = configKeys
	Deref        = deref
	ExpandString = expandString
	SplitIPPort  = splitIPPort
	IsMeasure    = isMeasure
)

// DecodeScalar decodes s as a YAML scalar into a value of type T, as the
// loader does for a config field.
func DecodeScalar[T any](s string) (T, Errors) {
	var v T
	l := newLoader(nil, nil, DefaultLimits)
	l.file = "c.yaml"
	l.decode(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Line: 1, Column: 1}, reflect.ValueOf(&v).Elem())
	return v, l.errs
}
