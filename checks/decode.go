package checks

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// The loader decodes yaml.Node trees itself rather than with yaml.v3's
// Decode: that way every unknown key and type error gets a line and column,
// every problem is reported (not just the first), and every struct's Pos is
// filled.

// loader holds the state of one Load/Parse call.
type loader struct {
	getenv  func(string) (string, bool)
	secrets *Redactor
	errs    Errors
	warns   Errors
	file    string // the file being decoded
	lim     Limits
	nChecks int // checks seen so far, over the main file and includes
	// reg is the kinds and notifier types the config may name; kindKeys
	// lists the check keys that belong to kinds, with the types taking
	// each.
	reg      *Registry
	kindKeys map[string][]string
	// expectKeys lists the expect keys that belong to kinds, with the
	// types taking each; kind is the kind of the check being decoded,
	// whose expect keys its expect mappings take.
	expectKeys map[string][]string
	kind       Kind

	// maps is the mapping node of every decoded struct, by the struct's Pos,
	// so validation can point at any field of it.
	maps map[Pos]*yaml.Node
	// secretPos marks scalars whose value came from the environment: errors
	// must not echo them.
	secretPos map[Pos]bool
	// expanded marks scalars rewritten by ${...} expansion.
	expanded map[*yaml.Node]bool
}

func newLoader(reg *Registry, getenv func(string) (string, bool), lim Limits) *loader {
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	return &loader{
		reg:        reg,
		kindKeys:   reg.kindKeys(),
		expectKeys: reg.expectKeys(),
		getenv:     getenv,
		lim:        lim,
		secrets:    NewRedactor(),
		maps:       map[Pos]*yaml.Node{},
		secretPos:  map[Pos]bool{},
		expanded:   map[*yaml.Node]bool{},
	}
}

func (l *loader) pos(n *yaml.Node) Pos { return Pos{File: l.file, Line: n.Line, Col: n.Column} }

func (l *loader) errAt(p Pos, format string, args ...any) {
	l.errs = append(l.errs, Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) warnAt(p Pos, format string, args ...any) {
	l.warns = append(l.warns, Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// quote renders a scalar for an error message, hiding values that came from
// the environment.
func (l *loader) quote(p Pos, s string) string {
	if l.secretPos[p] {
		return Placeholder
	}
	return strconv.Quote(s)
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's key/value pairs, applying YAML merge keys (<<):
// merged keys come after explicit ones and never override them.
func pairs(n *yaml.Node) []pair {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []pair
	var merges []*yaml.Node
	explicit := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, deref(v))
			continue
		}
		out = append(out, pair{k, v})
		explicit[k.Value] = true
	}
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			for _, p := range pairs(src) {
				if !explicit[p.key.Value] {
					explicit[p.key.Value] = true
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// lookup returns the value node of key in mapping n, or nil.
func lookup(n *yaml.Node, key string) (k, v *yaml.Node) {
	for _, p := range pairs(n) {
		if p.key.Value == key {
			return p.key, deref(p.val)
		}
	}
	return nil, nil
}

var varNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandTree expands ${VAR}, ${VAR:-default} and $$ in every scalar value
// (never in keys) of the tree, in place, so node positions stay valid.
func (l *loader) expandTree(n *yaml.Node, seen map[*yaml.Node]bool) {
	if n == nil || seen[n] {
		return
	}
	seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			l.expandTree(c, seen)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			l.expandTree(n.Content[i], seen)
		}
	case yaml.ScalarNode:
		l.expandScalar(n)
	}
}

func (l *loader) expandScalar(n *yaml.Node) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	out, fromEnv, err := expandString(n.Value, l.getenv, l.secrets)
	if err != nil {
		l.errAt(l.pos(n), "%v", err)
		return
	}
	if fromEnv {
		l.secretPos[l.pos(n)] = true
	}
	if out != n.Value {
		n.Value = out
		l.expanded[n] = true
		// A plain scalar is re-resolved, so `down_after: ${N:-3}` is an int.
		if n.Style == 0 {
			n.Tag = ""
		}
	}
}

// expandString does the expansion of one value. Values taken from the
// environment are recorded in secrets; errors name variables, never values.
func expandString(s string, getenv func(string) (string, bool), secrets *Redactor) (string, bool, error) {
	var b strings.Builder
	fromEnv := false
	var missing []string
	var badName error
	for i := 0; i < len(s); {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return s, false, errors.New("unterminated ${ in value (write $$ for a literal $)")
			}
			expr := s[i+2 : i+2+end]
			i += 2 + end + 1
			name, def, hasDef := strings.Cut(expr, ":-")
			if !varNameRE.MatchString(name) {
				if badName == nil {
					badName = fmt.Errorf("invalid variable name %q in ${...}", name)
				}
				continue
			}
			val, ok := getenv(name)
			switch {
			case ok && (val != "" || !hasDef):
				b.WriteString(val)
				if val != "" {
					fromEnv = true
					secrets.Add(val)
				}
			case hasDef:
				b.WriteString(def)
			default:
				missing = append(missing, strconv.Quote(name))
			}
		default:
			b.WriteByte('$')
			i++
		}
	}
	// One message per value, so each error stays one line.
	switch {
	case badName != nil:
		return s, fromEnv, badName
	case len(missing) == 1:
		return s, fromEnv, fmt.Errorf("environment variable %s is not set", missing[0])
	case len(missing) > 1:
		return s, fromEnv, fmt.Errorf("environment variables %s are not set", strings.Join(missing, ", "))
	}
	return b.String(), fromEnv, nil
}

var (
	posType              = reflect.TypeFor[Pos]()
	durationType         = reflect.TypeFor[model.Duration]()
	ipVersionType        = reflect.TypeFor[IPVersion]()
	byteSizeType         = reflect.TypeFor[ByteSize]()
	nodeAddrType         = reflect.TypeFor[NodeAddr]()
	checkType            = reflect.TypeFor[Check]()
	expectType           = reflect.TypeFor[Expect]()
	notifierType         = reflect.TypeFor[Notifier]()
	tlsConfigType        = reflect.TypeFor[config.TLSConfig]()
	httpClientConfigType = reflect.TypeFor[config.HTTPClientConfig]()
)

func (l *loader) isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && !l.expanded[n]
}

// describe names what a node is, for type errors.
func (l *loader) describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return l.quote(l.pos(n), n.Value)
}

func (l *loader) typeErr(n *yaml.Node, want string) {
	l.errAt(l.pos(n), "expected %s, got %s", want, l.describe(n))
}

// initDefaults presets a freshly allocated value with its type's defaults,
// so keys absent from the YAML keep them.
func initDefaults(v reflect.Value) {
	if !v.CanAddr() {
		return
	}
	switch p := v.Addr().Interface().(type) {
	case Defaulter:
		p.SetDefaults()
	case *Notifier:
		*p = defaultNotifier()
	case *Alert:
		*p = defaultAlert()
	}
}

// decode decodes n into v (settable), recording every problem.
func (l *loader) decode(n *yaml.Node, v reflect.Value) {
	n = deref(n)
	if n == nil || l.isNull(n) {
		return
	}
	t := v.Type()
	switch t {
	case durationType:
		if n.Kind != yaml.ScalarNode {
			l.typeErr(n, "a duration")
			return
		}
		d, err := model.ParseDuration(n.Value)
		if err != nil {
			l.errAt(l.pos(n), "invalid duration %s (want e.g. 500ms, 30s, 5m, 2h, 7d)", l.quote(l.pos(n), n.Value))
			return
		}
		v.Set(reflect.ValueOf(d))
		return
	case ipVersionType:
		iv, err := ParseIPVersion(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			l.errAt(l.pos(n), "invalid ip_version %s (want 4, 6 or any)", l.describe(n))
			return
		}
		v.Set(reflect.ValueOf(iv))
		return
	case byteSizeType:
		b, err := ParseByteSize(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			l.errAt(l.pos(n), "invalid size %s (want e.g. 512, 10KB, 10KiB, 10MiB)", l.describe(n))
			return
		}
		v.Set(reflect.ValueOf(b))
		return
	case nodeAddrType:
		if n.Kind == yaml.ScalarNode {
			v.Set(reflect.ValueOf(NodeAddr{Address: n.Value, Pos: l.pos(n)}))
			return
		}
	case tlsConfigType, httpClientConfigType:
		l.decodeExternal(n, v)
		return
	}

	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			nv := reflect.New(t.Elem())
			initDefaults(nv.Elem())
			l.decode(n, nv.Elem())
			v.Set(nv)
		} else {
			l.decode(n, v.Elem())
		}
	case reflect.Struct:
		l.decodeStruct(n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.typeErr(n, "a list")
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			initDefaults(s.Index(i))
			l.decode(c, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			l.typeErr(n, "a mapping")
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]*yaml.Node{}
		for _, p := range pairs(n) {
			k := deref(p.key)
			if k.Kind != yaml.ScalarNode {
				l.errAt(l.pos(k), "expected a string key, got %s", l.describe(k))
				continue
			}
			if prev := seen[k.Value]; prev != nil {
				l.errAt(l.pos(k), "duplicate key %q (first defined at line %d)", k.Value, prev.Line)
				continue
			}
			seen[k.Value] = k
			e := reflect.New(t.Elem()).Elem()
			initDefaults(e)
			l.decode(p.val, e)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			l.typeErr(n, "a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!bool" && !l.expanded[n]) || err != nil {
			l.typeErr(n, "a boolean")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		err := errors.New("not an int")
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
			err = n.Decode(&i)
		}
		if err != nil || v.OverflowInt(i) {
			l.typeErr(n, "an integer")
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		var f float64
		err := errors.New("not a number")
		if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") {
			err = n.Decode(&f)
		}
		if err != nil {
			l.typeErr(n, "a number")
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			l.errAt(l.pos(n), "%s", cleanYAMLError(err))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		l.errAt(l.pos(n), "cannot decode into %s", t)
	}
}

// fieldIndex maps yaml key -> field index for one of our own structs.
func fieldIndex(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		out[name] = i
	}
	return out
}

func (l *loader) decodeStruct(n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		l.typeErr(n, "a mapping")
		return
	}
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		p := l.pos(n)
		f.Set(reflect.ValueOf(p))
		l.maps[p] = n
	}
	if v.Type() == checkType {
		// The kind decides what the check's expect mappings take, wherever
		// type: stands in the mapping.
		defer func(k Kind) { l.kind = k }(l.kind)
		l.kind = nil
		if _, tv := lookup(n, "type"); tv != nil && tv.Kind == yaml.ScalarNode {
			l.kind = l.reg.Kind(tv.Value)
		}
	}
	fields := fieldIndex(v.Type())
	seen := map[string]*yaml.Node{}
	for _, p := range pairs(n) {
		k := deref(p.key)
		if k.Kind != yaml.ScalarNode {
			l.errAt(l.pos(k), "expected a string key, got %s", l.describe(k))
			continue
		}
		if prev := seen[k.Value]; prev != nil {
			l.errAt(l.pos(k), "duplicate key %q (first defined at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		i, ok := fields[k.Value]
		if !ok {
			if l.ownKey(n, v, k.Value) {
				continue // decoded into the kind's config below
			}
			if e, ok := v.Addr().Interface().(KeyExplainer); ok {
				if msg := e.UnknownKey(k.Value); msg != "" {
					l.errAt(l.pos(k), "%s", msg)
					continue
				}
			}
			l.errAt(l.pos(k), "unknown key %q", k.Value)
			continue
		}
		l.decode(p.val, v.Field(i))
	}
	switch v.Type() {
	case checkType:
		c := v.Addr().Interface().(*Check)
		if spec, ok := l.specFor(c.Type); ok {
			l.decodeSpec(n, spec, fields)
			c.Spec = spec.Interface()
		}
	case expectType:
		l.decodeExpectSpec(n, v.Addr().Interface().(*Expect), fields)
	case notifierType:
		nf := v.Addr().Interface().(*Notifier)
		if nk := l.reg.notifier(nf.Type); nk != nil {
			if cfg := nk.NewConfig(); cfg != nil {
				spec := reflect.ValueOf(cfg)
				l.decodeSpec(n, spec, fields)
				nf.Spec = cfg
			}
		}
	}
}

// ownKey reports whether key of the check or notifier v belongs to a
// kind's config rather than to v itself: a check key some kind takes, or
// a key of the notifier's own type.
func (l *loader) ownKey(n *yaml.Node, v reflect.Value, key string) bool {
	switch v.Type() {
	case checkType:
		_, ok := l.kindKeys[key]
		return ok
	case expectType:
		_, ok := l.expectKeys[key]
		return ok
	case notifierType:
		_, tv := lookup(n, "type")
		if tv == nil {
			return false
		}
		if nk := l.reg.notifier(tv.Value); nk != nil {
			if cfg := nk.NewConfig(); cfg != nil {
				_, ok := fieldIndex(reflect.TypeOf(cfg).Elem())[key]
				return ok
			}
		}
	}
	return false
}

// decodeExpectSpec decodes the keys of expect mapping n that the check's
// kind declares into e.Spec, and warns about those only other kinds take:
// they were accepted, and ignored, while expect was one union.
func (l *loader) decodeExpectSpec(n *yaml.Node, e *Expect, shared map[string]int) {
	if l.kind == nil {
		return // the check's type is missing or unknown: reported there
	}
	var own map[string]int
	if cfg := newExpect(l.kind); cfg != nil {
		spec := reflect.ValueOf(cfg)
		l.decodeSpec(n, spec, shared)
		e.Spec = cfg
		own = fieldIndex(spec.Elem().Type())
	}
	seen := map[string]bool{}
	for _, p := range pairs(n) {
		k := deref(p.key)
		if k.Kind != yaml.ScalarNode || seen[k.Value] {
			continue
		}
		seen[k.Value] = true
		if _, ok := shared[k.Value]; ok {
			continue
		}
		if _, ok := own[k.Value]; ok {
			continue
		}
		if _, ok := l.expectKeys[k.Value]; ok {
			l.warnAt(l.pos(k), "key %q is not valid for a %s check's expect and is ignored; it will be an error in a future release",
				k.Value, l.kind.Type())
		}
	}
}

// decodeSpec decodes the keys of mapping n that the kind's config spec (a
// pointer to a struct) declares, except those of the check or notifier
// itself (shared); its Pos is the mapping's.
func (l *loader) decodeSpec(n *yaml.Node, spec reflect.Value, shared map[string]int) {
	v := spec.Elem()
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		f.Set(reflect.ValueOf(l.pos(n)))
	}
	fields := fieldIndex(v.Type())
	seen := map[string]bool{}
	for _, p := range pairs(n) {
		k := deref(p.key)
		if k.Kind != yaml.ScalarNode || seen[k.Value] {
			continue // reported while decoding the check
		}
		seen[k.Value] = true
		if _, ok := shared[k.Value]; ok {
			continue
		}
		if i, ok := fields[k.Value]; ok {
			l.decode(p.val, v.Field(i))
		}
	}
}

// decodeExternal decodes a prometheus/common type with its own unmarshaler
// (which also validates it), after checking its keys strictly ourselves.
func (l *loader) decodeExternal(n *yaml.Node, v reflect.Value) {
	before := len(l.errs)
	l.checkKeys(n, v.Type())
	if len(l.errs) > before {
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, msg := range te.Errors {
				l.errAt(l.posOfLine(n, msg), "%s", stripLine(msg))
			}
			return
		}
		l.errAt(l.pos(n), "%s", cleanYAMLError(err))
	}
}

// externalFields lists the yaml keys of a foreign struct, flattening inline
// structs; anyElem is set when an inline map accepts arbitrary keys.
func externalFields(t reflect.Type, out map[string]reflect.Type) (anyElem reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			switch f.Type.Kind() {
			case reflect.Struct:
				if e := externalFields(f.Type, out); e != nil {
					anyElem = e
				}
			case reflect.Map:
				anyElem = f.Type.Elem()
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return anyElem
}

// checkKeys reports unknown keys anywhere below n for type t.
func (l *loader) checkKeys(n *yaml.Node, t reflect.Type) {
	n = deref(n)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := map[string]reflect.Type{}
		anyElem := externalFields(t, fields)
		for _, p := range pairs(n) {
			if ft, ok := fields[p.key.Value]; ok {
				l.checkKeys(p.val, ft)
			} else if anyElem != nil {
				l.checkKeys(p.val, anyElem)
			} else {
				l.errAt(l.pos(p.key), "unknown key %q", p.key.Value)
			}
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for _, c := range n.Content {
				l.checkKeys(c, t.Elem())
			}
		}
	case reflect.Map:
		for _, p := range pairs(n) {
			l.checkKeys(p.val, t.Elem())
		}
	}
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// posOfLine finds the first node under n on the line a yaml.v3 message
// names, so the error gets a column too.
func (l *loader) posOfLine(n *yaml.Node, msg string) Pos {
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return l.pos(n)
	}
	line, _ := strconv.Atoi(m[1])
	var found *yaml.Node
	var walk func(*yaml.Node)
	walk = func(c *yaml.Node) {
		if c == nil {
			return
		}
		if c.Line == line && c.Kind == yaml.ScalarNode {
			found = c // the last scalar on the line: the value, not its key
		}
		for _, cc := range c.Content {
			walk(cc)
		}
	}
	walk(n)
	if found == nil {
		return Pos{File: l.file, Line: line, Col: 1}
	}
	return l.pos(found)
}

func stripLine(msg string) string {
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		return m[2]
	}
	return msg
}

func cleanYAMLError(err error) string {
	return stripLine(strings.TrimPrefix(err.Error(), "yaml: "))
}
