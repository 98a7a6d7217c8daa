package checks

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Kind is the config side of one check kind, declared by the kind's own
// package: the keys a check of this type accepts beside the shared ones,
// decoded strictly into the kind's own struct, and the rules on them.
type Kind interface {
	// Type is the check's type: value.
	Type() string
	// NewConfig returns a pointer to a new config struct holding the
	// kind's defaults. Its yaml-tagged fields are the check keys the kind
	// accepts beside the shared ones (a field named like a shared key is
	// never filled: the kind reads those from the Check). The loader
	// decodes them as strictly as the rest of the file (unknown keys,
	// types, FILE:LINE:COL) into it and stores it in Check.Spec. A nested
	// struct with a Pos field gets its position, for the kind's own errors.
	NewConfig() any
	// Finish validates the decoded config (c.Spec) and applies the
	// defaults that depend on the rest of the check, reporting through v.
	Finish(v *Validator, c *Check)
}

// ExpectKind is a Kind whose checks take expect: keys of their own beside
// the shared max_duration and tls_min_days. NewExpect returns a pointer
// to a new struct of them with their defaults, as NewConfig does; the
// loader decodes the other keys of each expect: mapping of the kind's
// checks (the check's own and any *Expect in the kind's config, such as an
// http step's) strictly into it and stores it in Expect.Spec. A key only
// another kind's expect takes is a warning, for configs written when
// expect was one union; any other unknown key is an error. The kind
// validates the struct in its Finish.
type ExpectKind interface {
	Kind
	NewExpect() any
}

// NotifierKind is the config side of one notifier type, declared by the
// notifier's own package, like Kind: NewConfig returns nil for a type
// with no keys of its own.
type NotifierKind interface {
	Type() string
	NewConfig() any
	Finish(v *Validator, n *Notifier)
}

// SchemaDocs is a kind's part of the JSON Schema that its Go types cannot
// carry, keyed as package schema keys its own: "Type" (a struct's
// description) and "Type.key" (a field's), with Type the name of a struct
// of the kind's package, or "Check.key" ("Notifier.key") for the keys of
// its config. A Kind or NotifierKind declares it with a SchemaDocs method.
type SchemaDocs struct {
	Types    map[string]string
	Fields   map[string]string
	Enums    map[string][]any
	Patterns map[string]string
	Required map[string][]string
}

// Traits are the ways a kind's runs differ for the parts of vantage that
// read every kind's results (statistics, /metrics, storage, the status
// page, vantage once). A kind's config declares them with a Traits method;
// the zero value fits a kind whose run is one request or exchange.
type Traits struct {
	// StepSeries: every step of a run is its own series, one step too,
	// and steps carry no request phases (a browser journey's actions).
	StepSeries bool
	// Pages: runs load pages that report their requests per domain
	// (the vantage_browser_* series and the status page's domain table),
	// and every run is stored in full.
	Pages bool
	// Steps is the number of steps a run has, for the cost estimate of
	// the series a check adds.
	Steps int
	// DetailLabel names the run's detail (probe.Outcome.Detail) on its own
	// line under the run in vantage once, e.g. "answers"; empty leaves the
	// detail out.
	DetailLabel string
}

// Traits are the traits the check's kind declares for it.
func (c *Check) Traits() Traits {
	if d, ok := c.Spec.(interface{ Traits() Traits }); ok {
		return d.Traits()
	}
	return Traits{}
}

// Defaulter is a config type (a kind's, or a struct in it) that presets
// its defaults, so keys absent from the YAML keep them; the loader calls
// SetDefaults on every value of the type it allocates.
type Defaulter interface{ SetDefaults() }

// KeyExplainer is a config type that says why a key it does not take is
// wrong, e.g. a browser action in an http step; "" leaves the loader's
// `unknown key` message.
type KeyExplainer interface{ UnknownKey(key string) string }

// Registry is the check kinds and notifier types a config may name, in
// the order messages list them. kinds/kinds.go fills the one vantage runs;
// it is passed to the loader (Registry.Load) and the schema generator, so
// nothing registers itself.
type Registry struct {
	kinds     []Kind
	notifiers []NotifierKind
}

// NewRegistry returns a registry of ks.
func NewRegistry(ks ...Kind) *Registry {
	r := &Registry{}
	for _, k := range ks {
		r.AddKind(k)
	}
	return r
}

// AddKind registers a check kind; a second kind of the same type replaces
// the first.
func (r *Registry) AddKind(k Kind) {
	if i := slices.IndexFunc(r.kinds, func(o Kind) bool { return o.Type() == k.Type() }); i >= 0 {
		r.kinds[i] = k
		return
	}
	r.kinds = append(r.kinds, k)
}

// AddNotifier registers a notifier type, replacing one of the same type.
func (r *Registry) AddNotifier(n NotifierKind) {
	if i := slices.IndexFunc(r.notifiers, func(o NotifierKind) bool { return o.Type() == n.Type() }); i >= 0 {
		r.notifiers[i] = n
		return
	}
	r.notifiers = append(r.notifiers, n)
}

// Kinds lists the registered check kinds.
func (r *Registry) Kinds() []Kind {
	if r == nil {
		return nil
	}
	return slices.Clone(r.kinds)
}

// Notifiers lists the registered notifier types.
func (r *Registry) Notifiers() []NotifierKind {
	if r == nil {
		return nil
	}
	return slices.Clone(r.notifiers)
}

// Kind is the check kind of type typ, or nil.
func (r *Registry) Kind(typ string) Kind {
	if r == nil {
		return nil
	}
	for _, k := range r.kinds {
		if k.Type() == typ {
			return k
		}
	}
	return nil
}

func (r *Registry) notifier(typ string) NotifierKind {
	if r == nil {
		return nil
	}
	for _, n := range r.notifiers {
		if n.Type() == typ {
			return n
		}
	}
	return nil
}

// KindTypes lists the check types, in registration order.
func (r *Registry) KindTypes() []string {
	var out []string
	for _, k := range r.Kinds() {
		out = append(out, k.Type())
	}
	return out
}

// NotifierTypes lists the notifier types, in registration order.
func (r *Registry) NotifierTypes() []string {
	var out []string
	for _, n := range r.Notifiers() {
		out = append(out, n.Type())
	}
	return out
}

// kindKeys lists, per check key that belongs to a kind rather than to
// every check, the types that accept it.
func (r *Registry) kindKeys() map[string][]string {
	out := map[string][]string{}
	shared := fieldIndex(checkType)
	for _, k := range r.Kinds() {
		if cfg := k.NewConfig(); cfg != nil {
			for key := range fieldIndex(reflect.TypeOf(cfg).Elem()) {
				if _, ok := shared[key]; !ok {
					out[key] = append(out[key], k.Type())
				}
			}
		}
	}
	return out
}

// expectKeys lists, per expect key that belongs to a kind rather than to
// every expect mapping, the types that accept it.
func (r *Registry) expectKeys() map[string][]string {
	out := map[string][]string{}
	shared := fieldIndex(expectType)
	for _, k := range r.Kinds() {
		if cfg := newExpect(k); cfg != nil {
			for key := range fieldIndex(reflect.TypeOf(cfg).Elem()) {
				if _, ok := shared[key]; !ok {
					out[key] = append(out[key], k.Type())
				}
			}
		}
	}
	return out
}

// newExpect is k's NewExpect, or nil for a kind without expect keys.
func newExpect(k Kind) any {
	ek, ok := k.(ExpectKind)
	if !ok {
		return nil
	}
	cfg := ek.NewExpect()
	if cfg == nil {
		return nil
	}
	if v := reflect.ValueOf(cfg); v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("checks: kind %s: NewExpect must return a pointer to a struct, not %T", k.Type(), cfg))
	}
	return cfg
}

// orList renders a list as "a, b or c".
func orList(xs []string) string {
	switch len(xs) {
	case 0:
		return "none"
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// Validator is what a kind's Finish reports through: positions of any key
// of the check's mapping, errors and warnings with FILE:LINE:COL, and the
// loader's shared rules (URLs, *_file secrets, redaction).
type Validator struct{ l *loader }

// Errorf reports a problem at p.
func (v *Validator) Errorf(p Pos, format string, args ...any) { v.l.errAt(p, format, args...) }

// Warnf reports a warning at p.
func (v *Validator) Warnf(p Pos, format string, args ...any) { v.l.warnAt(p, format, args...) }

// At is the position of the value at path (keys and list indexes) below
// the struct at p, else the deepest position found.
func (v *Validator) At(p Pos, path ...any) Pos { return v.l.at(p, path...) }

// KeyAt is the position of the key that ends path, for errors about a key.
func (v *Validator) KeyAt(p Pos, path ...any) Pos { return v.l.keyAt(p, path...) }

// Has reports whether key is present in the mapping of the struct at p.
func (v *Validator) Has(p Pos, key string) bool { return v.l.has(p, key) }

// Quote quotes the value at path for a message, or hides it when it came
// from the environment.
func (v *Validator) Quote(val string, p Pos, path ...any) string { return v.l.q(val, p, path...) }

// CheckURL reports a value that is not an absolute http or https URL.
func (v *Validator) CheckURL(raw string, p Pos, path ...any) { v.l.checkURL(raw, p, path...) }

// ReadSecretFile reads the file fileKey names (relative to the config
// file) into *dst, the value of its sibling key field, and records it for
// redaction; base is the path of their mapping below p.
func (v *Validator) ReadSecretFile(p Pos, base []any, field string, dst *string, fileKey, file string) {
	v.l.readSecretFile(p, base, field, dst, fileKey, file)
}

// Secrets is the config's redactor: values added are scrubbed from
// messages, logs and the API.
func (v *Validator) Secrets() *Redactor { return v.l.secrets }

// Unique records name at p, reporting a duplicate of an earlier one.
func (v *Validator) Unique(seen map[string]Pos, what, name string, p Pos) {
	v.l.unique(seen, what, name, p)
}

// CheckTemplate reports a value at path that is not a valid template
// ({{ .variable }} of a journey).
func (v *Validator) CheckTemplate(s string, p Pos, path ...any) { v.l.checkTemplate(s, p, path...) }

// WarnShortSecret warns that the secret of field at is too short to be
// redacted.
func (v *Validator) WarnShortSecret(at Pos, field string) { v.l.warnShortSecret(at, field) }

// FinishExpect validates the shared keys of an expect: mapping inside the
// kind's config (a step's), as the check's own are; the kind validates
// e.Spec itself.
func (v *Validator) FinishExpect(e *Expect) { v.l.finishExpect(e) }

// ValidMethod reports whether m is an upper-case HTTP method token.
func ValidMethod(m string) bool { return validMethod(m) }

// ValidHostPort reports whether s is host:port with a port in 1-65535.
func ValidHostPort(s string) bool { return validHostPort(s) }

// NormalizeHostPort accepts host:port, or a bare IP to which defPort is
// added.
func NormalizeHostPort(s, defPort string) (string, bool) { return normalizeHostPort(s, defPort) }

// specFor allocates typ's config, for a check being decoded.
func (l *loader) specFor(typ string) (reflect.Value, bool) {
	k := l.reg.Kind(typ)
	if k == nil {
		return reflect.Value{}, false
	}
	cfg := k.NewConfig()
	if cfg == nil {
		return reflect.Value{}, false
	}
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("checks: kind %s: NewConfig must return a pointer to a struct, not %T", typ, cfg))
	}
	return v, true
}
