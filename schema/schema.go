// Package schema generates a JSON Schema (draft 2020-12) for vantage's
// configuration from the Go types in package checks, by reflection over
// their yaml tags, so editors can complete and check config files and the
// schema never drifts from the code. It also holds a small validator for
// the subset of JSON Schema it generates.
package schema

import (
	"bytes"
	"encoding/json"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/checks"
)

// ID is the schema's $id: where the checked-in copy lives.
const ID = "https://raw.githubusercontent.com/vantage-monitoring/vantage/main/docs/config.schema.json"

// Draft is the JSON Schema dialect generated.
const Draft = "https://json-schema.org/draft/2020-12/schema"

// Schema is one JSON Schema node, limited to the keywords vantage uses.
type Schema struct {
	Schema      string `json:"$schema,omitempty"`
	ID          string `json:"$id,omitempty"`
	Ref         string `json:"$ref,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Type is a string or a list of strings.
	Type       any                `json:"type,omitempty"`
	Properties map[string]*Schema `json:"properties,omitempty"`
	// AdditionalProperties is false or a *Schema.
	AdditionalProperties any       `json:"additionalProperties,omitempty"`
	Items                *Schema   `json:"items,omitempty"`
	Required             []string  `json:"required,omitempty"`
	Enum                 []any     `json:"enum,omitempty"`
	Pattern              string    `json:"pattern,omitempty"`
	MinLength            *int      `json:"minLength,omitempty"`
	Minimum              *float64  `json:"minimum,omitempty"`
	AnyOf                []*Schema `json:"anyOf,omitempty"`
	Examples             []any     `json:"examples,omitempty"`

	Defs map[string]*Schema `json:"$defs,omitempty"`
}

// envRef matches a value that is (or contains) an environment reference:
// the loader expands ${VAR} and ${VAR:-default} in every scalar before it
// decodes, so `down_after: ${N:-3}` is valid although it is a YAML string.
const envRef = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// durationRE is Prometheus' duration syntax (model.ParseDuration).
const durationRE = `^(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$`

// byteSizeRE is checks.ParseByteSize's syntax.
const byteSizeRE = `^\s*[0-9.]+\s*([bB]|[kKmMgGtT]([iI]?[bB])?)?\s*$`

var (
	durationType         = reflect.TypeFor[model.Duration]()
	ipVersionType        = reflect.TypeFor[checks.IPVersion]()
	byteSizeType         = reflect.TypeFor[checks.ByteSize]()
	nodeAddrType         = reflect.TypeFor[checks.NodeAddr]()
	posType              = reflect.TypeFor[checks.Pos]()
	exprType             = reflect.TypeFor[checks.Expr]()
	secretType           = reflect.TypeFor[config.Secret]()
	urlType              = reflect.TypeFor[config.URL]()
	tlsVersionType       = reflect.TypeFor[config.TLSVersion]()
	tlsConfigType        = reflect.TypeFor[config.TLSConfig]()
	httpClientConfigType = reflect.TypeFor[config.HTTPClientConfig]()
)

// Generate returns the schema of a vantage config file (checks.Config)
// whose checks and notifiers are of the types in reg: each kind's config
// keys are properties of a check, described by its SchemaDocs.
func Generate(reg *checks.Registry) *Schema {
	g := newGenerator(reg)
	root := g.structSchema(reflect.TypeFor[checks.Config]())
	root.Schema = Draft
	root.ID = ID
	root.Title = "vantage configuration"
	root.Description = "Configuration of vantage, the synthetic, customer-perspective monitoring daemon. " +
		"${VAR} and ${VAR:-default} expand from the environment in every value. See config.example.yaml and docs/writing-checks.md."
	root.Defs = g.defs
	return root
}

// JSON renders Generate(reg) as indented JSON with a trailing newline:
// with every kind vantage runs, the content of docs/config.schema.json.
func JSON(reg *checks.Registry) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(Generate(reg)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type generator struct {
	defs map[string]*Schema
	// docs are the descriptions, enums and patterns of each package's
	// types: docs.go's for checks, each kind's SchemaDocs for its own.
	docs map[string]*checks.SchemaDocs
	// extra are the config types of the kinds, whose keys are properties
	// of Check (or Notifier), and their expect types, whose keys are
	// properties of Expect.
	extra map[reflect.Type][]reflect.Type
}

// docsOf is a kind's SchemaDocs, if it declares any.
func docsOf(k any) checks.SchemaDocs {
	if d, ok := k.(interface{ SchemaDocs() checks.SchemaDocs }); ok {
		return d.SchemaDocs()
	}
	return checks.SchemaDocs{}
}

func newGenerator(reg *checks.Registry) *generator {
	own := &checks.SchemaDocs{Types: typeDocs, Fields: maps.Clone(fieldDocs), Enums: maps.Clone(enums),
		Patterns: patterns, Required: required}
	g := &generator{
		defs:  map[string]*Schema{},
		docs:  map[string]*checks.SchemaDocs{reflect.TypeFor[checks.Config]().PkgPath(): own},
		extra: map[reflect.Type][]reflect.Type{},
	}
	kindTypes, notifierTypes := reg.KindTypes(), reg.NotifierTypes()
	own.Enums["Check.type"] = anys(kindTypes)
	own.Enums["Notifier.type"] = anys(notifierTypes)
	own.Fields["Check.type"] = "The kind: " + orList(kindTypes) + "."
	own.Fields["Notifier.type"] = orList(notifierTypes) + "."
	own.Fields["Config.notifiers"] = "Alert receivers: " + strings.Join(notifierTypes, ", ") + "."
	add := func(owner reflect.Type, kind, cfg any) {
		if cfg == nil {
			return
		}
		t := reflect.TypeOf(cfg).Elem()
		g.extra[owner] = append(g.extra[owner], t)
		d := docsOf(kind)
		have := g.docs[t.PkgPath()]
		if have == nil {
			g.docs[t.PkgPath()] = &d
			return
		}
		// Several kinds of one package: the first to describe a key wins.
		have.Types = merged(have.Types, d.Types)
		have.Fields = merged(have.Fields, d.Fields)
		have.Enums = merged(have.Enums, d.Enums)
		have.Patterns = merged(have.Patterns, d.Patterns)
		have.Required = merged(have.Required, d.Required)
	}
	for _, k := range reg.Kinds() {
		add(reflect.TypeFor[checks.Check](), k, k.NewConfig())
		if ek, ok := k.(checks.ExpectKind); ok {
			add(reflect.TypeFor[checks.Expect](), k, ek.NewExpect())
		}
	}
	for _, n := range reg.Notifiers() {
		add(reflect.TypeFor[checks.Notifier](), n, n.NewConfig())
	}
	return g
}

// merged is a with b's keys that a lacks.
func merged[V any](a, b map[string]V) map[string]V {
	out := maps.Clone(b)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, a)
	return out
}

// orList renders a list as "a, b or c".
func orList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

func anys(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// defName is the $defs key of a named struct type; prometheus/common's
// types and those of the kinds' packages get a prefix so they cannot
// clash with ours or each other's.
func defName(t reflect.Type) string {
	switch t.PkgPath() {
	case reflect.TypeFor[config.TLSConfig]().PkgPath():
		return "prometheus." + t.Name()
	case reflect.TypeFor[checks.Config]().PkgPath():
		return t.Name()
	}
	return path.Base(t.PkgPath()) + "." + t.Name()
}

// schemaFor returns the schema of a field of type t.
func (g *generator) schemaFor(t reflect.Type) *Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		return &Schema{Type: "string", Pattern: durationRE + "|" + envRef, MinLength: ptr(1),
			Description: "A Prometheus duration such as 500ms, 30s, 5m, 2h or 7d."}
	case ipVersionType:
		return &Schema{Type: []string{"integer", "string"}, Enum: []any{4, 6, "4", "6", "any"},
			Description: "Address family: 4, 6 or any."}
	case byteSizeType:
		return &Schema{Type: []string{"integer", "string"}, Pattern: byteSizeRE + "|" + envRef, Minimum: ptr(0.0),
			Description: "A size: bytes, or with a unit such as 512KB (x1000), 10KiB (x1024), 10MiB, 1GiB."}
	case nodeAddrType:
		return &Schema{Ref: g.ref(t, func() *Schema {
			obj := g.structSchema(t)
			obj.Required = []string{"address"}
			return &Schema{
				Description: `A node: "10.0.0.11", "10.0.0.13:8443" or {name: lb2, address: 10.0.0.12}.`,
				AnyOf:       []*Schema{{Type: "string", MinLength: ptr(1)}, obj},
			}
		})}
	case secretType:
		return &Schema{Type: "string", Description: "A secret; prefer the matching *_file key."}
	case urlType:
		return &Schema{Type: "string", Description: "A URL."}
	case tlsVersionType:
		var names []any
		for _, n := range slices.Sorted(maps.Keys(config.TLSVersions)) {
			names = append(names, n)
		}
		return &Schema{Type: "string", Enum: names}
	}
	switch t.Kind() {
	case reflect.Struct:
		return &Schema{Ref: g.ref(t, func() *Schema { return g.structSchema(t) })}
	case reflect.Slice:
		return &Schema{Type: "array", Items: g.schemaFor(t.Elem())}
	case reflect.Map:
		return &Schema{Type: "object", AdditionalProperties: g.schemaFor(t.Elem())}
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Bool:
		return &Schema{Type: []string{"boolean", "string"}, Pattern: envRef}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Schema{Type: []string{"integer", "string"}, Pattern: envRef}
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: []string{"number", "string"}, Pattern: envRef}
	}
	return &Schema{} // interface values (json eq/ne): anything
}

// ref registers t under $defs once (build is called at most once per type,
// before recursion can come back to it) and returns the reference.
func (g *generator) ref(t reflect.Type, build func() *Schema) string {
	name := defName(t)
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = &Schema{} // placeholder against recursion
		g.defs[name] = build()
	}
	return "#/$defs/" + name
}

// structSchema describes a struct as a closed object. Our types map keys to
// fields by their yaml tag; prometheus/common's types follow yaml.v2 rules
// (lower-cased field name without a tag, ",inline" structs and maps).
func (g *generator) structSchema(t reflect.Type) *Schema {
	s := &Schema{Type: "object", Properties: map[string]*Schema{}, AdditionalProperties: false}
	g.addFields(s, t, t)
	if len(g.extra[t]) > 0 {
		// A kind's field named like a shared key is not one of its keys.
		kinds := &Schema{Properties: map[string]*Schema{}}
		for _, et := range g.extra[t] {
			g.addFields(kinds, et, t)
		}
		for name, p := range kinds.Properties {
			if _, shared := s.Properties[name]; !shared {
				s.Properties[name] = p
			}
		}
	}
	d := g.docs[t.PkgPath()]
	if d != nil && d.Types[t.Name()] != "" {
		s.Description = d.Types[t.Name()]
	}
	if t == tlsConfigType {
		s.Description = "Prometheus tls_config: CA, client certificate, server name, TLS versions."
	}
	if t == httpClientConfigType {
		s.Description = "Prometheus http_config: authentication, proxy, tls_config, headers."
	}
	if d != nil && d.Required[t.Name()] != nil {
		s.Required = d.Required[t.Name()]
	}
	return s
}

func (g *generator) isOwn(t reflect.Type) bool { return g.docs[t.PkgPath()] != nil }

// addFields adds t's fields to s, the schema of owner (t itself, or Check
// or Notifier for a kind's config, whose keys are theirs); the first of
// several kinds declaring a key describes it.
func (g *generator) addFields(s *Schema, t, owner reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type == posType || f.Type == exprType {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			switch f.Type.Kind() {
			case reflect.Struct:
				g.addFields(s, f.Type, f.Type)
			case reflect.Map:
				s.AdditionalProperties = g.schemaFor(f.Type.Elem())
			}
			continue
		}
		if name == "" {
			if g.isOwn(t) {
				continue // our types always tag their keys
			}
			name = strings.ToLower(f.Name)
		}
		key := owner.Name() + "." + name
		fs := g.schemaFor(f.Type)
		docs := g.docs[t.PkgPath()]
		if docs == nil {
			docs = &checks.SchemaDocs{}
		}
		if d := docs.Fields[key]; d != "" {
			fs = describe(fs, d)
		}
		if e := docs.Enums[key]; e != nil {
			fs.Enum = e
		}
		if prev, dup := s.Properties[name]; dup && owner != t {
			s.Properties[name] = either(prev, fs)
			continue
		}
		if p := docs.Patterns[key]; p != "" {
			if v, ok := fs.AdditionalProperties.(*Schema); ok {
				v.Pattern = p
			} else {
				fs.Pattern = p
			}
		}
		s.Properties[name] = fs
	}
}

// either is the schema of a key several kinds take: one of theirs when
// they agree, else any of them (described by the first).
func either(a, b *Schema) *Schema {
	strip := func(s *Schema) string {
		c := *s
		c.Description = ""
		j, _ := json.Marshal(&c)
		return string(j)
	}
	if a.AnyOf != nil && a.Type == nil && a.Ref == "" {
		for _, alt := range a.AnyOf {
			if strip(alt) == strip(b) {
				return a
			}
		}
		a.AnyOf = append(a.AnyOf, b)
		return a
	}
	if strip(a) == strip(b) {
		return a
	}
	alt := *a
	alt.Description = ""
	b.Description = ""
	return &Schema{Description: a.Description, AnyOf: []*Schema{&alt, b}}
}

// describe attaches a description (next to a $ref too: draft 2020-12
// allows siblings of $ref, so the shared definition keeps its own).
func describe(s *Schema, d string) *Schema {
	s.Description = d
	return s
}

func ptr[T any](v T) *T { return &v }
