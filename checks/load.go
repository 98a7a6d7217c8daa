package checks

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Load reads, decodes, defaults and validates the config file and its
// includes within DefaultLimits; checks and notifiers may be of the types
// in r. getenv (e.g. os.LookupEnv) supplies ${VAR} values; nil means an
// empty environment. On failure the error is Errors, holding every
// problem.
func (r *Registry) Load(file string, getenv func(string) (string, bool)) (*Config, error) {
	return r.LoadWithLimits(file, getenv, DefaultLimits)
}

// LoadWithLimits is Load within lim (zero fields take DefaultLimits).
func (r *Registry) LoadWithLimits(file string, getenv func(string) (string, bool), lim Limits) (*Config, error) {
	lim = lim.orDefaults()
	data, err := readBounded(file, lim.MaxFileSize)
	if err != nil {
		l := loader{lim: lim}
		msg := "cannot read config: " + fsReason(err)
		if errors.Is(err, errTooLarge) {
			msg = l.tooLargeMsg("config file")
		}
		return nil, Errors{{Pos: Pos{File: file}, Msg: msg}}
	}
	return r.ParseWithLimits(data, file, getenv, lim)
}

// Parse is Load for config text already in memory; file names it in errors
// and is the base for relative include, *_file and tls paths.
func (r *Registry) Parse(data []byte, file string, getenv func(string) (string, bool)) (*Config, error) {
	return r.ParseWithLimits(data, file, getenv, DefaultLimits)
}

// ParseWithLimits is Parse within lim (zero fields take DefaultLimits).
func (r *Registry) ParseWithLimits(data []byte, file string, getenv func(string) (string, bool), lim Limits) (*Config, error) {
	l := newLoader(r, getenv, lim.orDefaults())
	cfg := &Config{Global: defaultGlobal(), File: file, Secrets: l.secrets}

	l.file = file
	var root *yaml.Node
	if int64(len(data)) > int64(l.lim.MaxFileSize) {
		l.errAt(Pos{File: file}, "%s", l.tooLargeMsg("config file"))
	} else {
		var empty bool
		root, empty = l.parseFile(data, false)
		if empty {
			l.errAt(Pos{File: file}, `config file is empty (write "allow_empty: true" for a config without checks)`)
		}
	}
	if root != nil {
		l.maps[l.pos(root)] = root
		l.limitChecks(root)
		l.decode(root, reflect.ValueOf(cfg).Elem())
		l.includes(cfg, root)
	}
	decoded := len(l.errs)
	l.finish(cfg)
	l.dropCascades(decoded)
	if root != nil {
		l.limitTargets(cfg)
	}
	if root != nil && len(l.errs) == 0 && len(cfg.Checks) == 0 && !cfg.AllowEmpty {
		l.warnAt(Pos{File: file}, "no checks defined; a running daemon refuses a reload that removes all its checks unless the config sets allow_empty: true")
	}

	cfg.Warnings = l.redacted(l.warns)
	if len(l.errs) > 0 {
		return nil, l.redacted(l.errs)
	}
	return cfg, nil
}

// dropCascades removes validation errors at a position where decoding
// already failed: a value that could not be read should not also fail the
// rules that build on it.
func (l *loader) dropCascades(decoded int) {
	bad := map[Pos]bool{}
	for _, e := range l.errs[:decoded] {
		bad[e.Pos] = true
	}
	kept := l.errs[:decoded]
	for _, e := range l.errs[decoded:] {
		if !bad[e.Pos] {
			kept = append(kept, e)
		}
	}
	l.errs = kept
}

// redacted sorts es and scrubs secrets; each message stays one line. A
// problem reported twice at the same position is listed once: a mapping
// merged into another (`<<: *a`) is decoded again there, and its problems
// with it.
func (l *loader) redacted(es Errors) Errors {
	if len(es) == 0 {
		return nil
	}
	sortErrors(es)
	out := make(Errors, 0, len(es))
	seen := map[Error]bool{}
	for _, e := range es {
		if seen[e] {
			continue
		}
		seen[e] = true
		e.Msg = strings.ReplaceAll(l.secrets.Redact(e.Msg), "\n", "; ")
		out = append(out, e)
	}
	return out
}

var (
	yamlSyntaxRE = regexp.MustCompile(`^line (\d+): (.*)$`)
	// yaml.v3 quotes the input in a few messages (an anchor name, a value
	// it could not convert); the quoted text may be a secret from a file
	// that was never meant to be YAML.
	yamlQuotedRE    = regexp.MustCompile("`[^`]*`|'[^'\\s]{2,}'|\"[^\"]*\"")
	unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// parseFile parses one YAML file into its root mapping (nil when empty or
// broken) and expands environment references in it. empty reports a file
// that holds nothing but whitespace and comments (or an explicit null).
// Errors about a file that is not a YAML mapping with a config key never
// quote its content: it may be a file such as /etc/shadow named by mistake.
func (l *loader) parseFile(data []byte, included bool) (root *yaml.Node, empty bool) {
	if !l.checkText(data) {
		return nil, false
	}
	if len(bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\ufeff")))) == 0 {
		return nil, true // yaml.v3 rejects a line that holds just a tab
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		p := Pos{File: l.file}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlSyntaxRE.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Col = 1
			msg = m[2]
		} else if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
			p = aliasUse(l.file, data, m[1])
			msg = "unknown anchor referenced (define it with &name before this *name)"
		} else {
			// yaml.v3 leaves out the line when the problem is on the first.
			p.Line, p.Col = 1, 1
		}
		l.errAt(p, "invalid YAML: %s", scrubQuoted(msg))
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.errAt(l.pos(&extra), "only one YAML document per file is supported")
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	root = doc.Content[0]
	if l.isNull(root) {
		return nil, true
	}
	if root.Kind != yaml.MappingNode {
		l.errAt(l.pos(root), "expected a mapping at the top level, got %s", kindOf(root))
		return nil, false
	}
	if !l.isConfig(root, included) {
		return nil, false
	}
	if !l.guardAliases(root) {
		return nil, false
	}
	l.expandTree(root, map[*yaml.Node]bool{})
	return root, false
}

// isConfig rejects a mapping none of whose keys is a config key: a file
// such as /etc/shadow parses as a mapping whose keys are its lines, and
// "unknown key" errors would quote them. It reads the keys as written
// (merge keys are not followed yet: they may be recursive).
func (l *loader) isConfig(root *yaml.Node, included bool) bool {
	if len(root.Content) == 0 {
		return true
	}
	known := configKeys()
	for i := 0; i < len(root.Content); i += 2 {
		if slices.Contains(known, root.Content[i].Value) {
			return true
		}
	}
	want := "no top-level key is one of " + strings.Join(known, ", ")
	if included {
		want = "an included file holds checks: and alerts:"
	}
	l.errAt(l.pos(root), "not a vantage config: %s (content not shown)", want)
	return false
}

// configKeys lists the top-level keys of a config file, sorted.
func configKeys() []string {
	keys := slices.Collect(maps.Keys(fieldIndex(reflect.TypeFor[Config]())))
	slices.Sort(keys)
	return keys
}

// scrubQuoted drops quoted input from a yaml.v3 message, keeping the
// one-character quotes of its grammar ('-', ':').
func scrubQuoted(msg string) string {
	return yamlQuotedRE.ReplaceAllString(msg, "(content not shown)")
}

// kindOf names what a node is without quoting it.
func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
	}
	return "a string"
}

// aliasUse finds the first use of alias *name in data, for the position of
// yaml.v3's "unknown anchor" error, which has none.
func aliasUse(file string, data []byte, name string) Pos {
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("*"+name))
		if i < 0 {
			return Pos{File: file}
		}
		i += off
		end := i + 1 + len(name)
		if end == len(data) || bytes.IndexByte([]byte(" \t\r\n,[]{}"), data[end]) >= 0 {
			return posAt(file, data, i)
		}
		off = i + 1
	}
}

// posAt is the FILE:LINE:COL of byte offset off, columns counted in
// characters as yaml.v3 counts them.
func posAt(file string, data []byte, off int) Pos {
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return Pos{File: file, Line: line, Col: 1 + utf8.RuneCount(data[start:off])}
}

// checkText rejects text yaml.v3 would refuse without a position: bytes
// that are not UTF-8, and control characters YAML does not allow.
func (l *loader) checkText(data []byte) bool {
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size <= 1 {
			l.errAt(posAt(l.file, data, off), "invalid UTF-8: a config file must be UTF-8 text (the first invalid byte is here)")
			return false
		}
		if !yamlChar(r) {
			l.errAt(posAt(l.file, data, off), "control character %U is not allowed in YAML", r)
			return false
		}
		off += size
	}
	return true
}

// yamlChar reports whether YAML 1.2 allows r in a stream (its c-printable).
func yamlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7E) || r == 0x85 ||
		(r >= 0xA0 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// includes merges the checks and alerts of every file the include globs
// match, in sorted order.
func (l *loader) includes(cfg *Config, root *yaml.Node) {
	if len(cfg.Include) == 0 {
		return
	}
	_, seq := lookup(root, "include")
	dir := filepath.Dir(cfg.File)
	self, _ := filepath.Abs(cfg.File)
	var files []string
	have := map[string]bool{self: true}
	for i, pat := range cfg.Include {
		p := l.pos(seq)
		if seq != nil && i < len(seq.Content) {
			p = l.pos(seq.Content[i])
		}
		full := pat
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, pat)
		}
		matches, err := filepath.Glob(full)
		if err != nil {
			l.errAt(p, "invalid include pattern %q: %v", pat, err)
			continue
		}
		if len(matches) == 0 {
			// A typo in a file name would silently drop a team's checks; a
			// glob over an empty checks.d/ is a normal state.
			if isLiteral(pat) {
				l.errAt(p, "included file %q does not exist", pat)
			} else {
				l.warnAt(p, "include pattern %q matches no files", pat)
			}
		}
		for _, m := range matches {
			abs, _ := filepath.Abs(m)
			if !have[abs] {
				have[abs] = true
				files = append(files, m)
			}
		}
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := readBounded(f, l.lim.MaxFileSize)
		if err != nil {
			msg := "cannot read included file: " + fsReason(err)
			if errors.Is(err, errTooLarge) {
				msg = l.tooLargeMsg("included file")
			}
			l.errAt(Pos{File: f}, "%s", msg)
			continue
		}
		l.file = f
		n, empty := l.parseFile(data, true)
		if empty {
			l.errAt(Pos{File: f}, `included file is empty (delete it, or write "checks: []")`)
		}
		if n == nil {
			continue
		}
		l.limitChecks(n)
		// Only checks and alerts may come from an include: global settings
		// spread over files would be hard to reason about.
		allowed := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line, Column: n.Column}
		for _, p := range pairs(n) {
			switch p.key.Value {
			case "checks", "alerts":
				allowed.Content = append(allowed.Content, p.key, p.val)
			default:
				l.errAt(l.pos(p.key), "key %q is not allowed in an included file (only checks and alerts)", p.key.Value)
			}
		}
		var inc Config
		l.decode(allowed, reflect.ValueOf(&inc).Elem())
		cfg.Checks = append(cfg.Checks, inc.Checks...)
		cfg.Alerts = append(cfg.Alerts, inc.Alerts...)
	}
	l.file = cfg.File
}

// isLiteral reports whether an include pattern names one file rather than
// a glob (filepath.Match's metacharacters).
func isLiteral(pat string) bool {
	return !strings.ContainsAny(pat, "*?[\\")
}

// fsReason is a file error without the path (which callers already name).
func fsReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
