package checks

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads, decodes, defaults and validates the config file and its
// includes. getenv (e.g. os.LookupEnv) supplies ${VAR} values; nil means an
// empty environment. On failure the error is Errors, holding every problem.
func Load(file string, getenv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, Errors{{Pos: Pos{File: file}, Msg: "cannot read config: " + fsReason(err)}}
	}
	return Parse(data, file, getenv)
}

// Parse is Load for config text already in memory; file names it in errors
// and is the base for relative include, *_file and tls paths.
func Parse(data []byte, file string, getenv func(string) (string, bool)) (*Config, error) {
	l := newLoader(getenv)
	cfg := &Config{Global: defaultGlobal(), File: file, Secrets: l.secrets}

	l.file = file
	root := l.parseFile(data)
	if root != nil {
		l.maps[l.pos(root)] = root
		l.decode(root, reflect.ValueOf(cfg).Elem())
		l.includes(cfg, root)
	}
	decoded := len(l.errs)
	l.finish(cfg)
	l.dropCascades(decoded)

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

// redacted sorts es and scrubs secrets; each message stays one line.
func (l *loader) redacted(es Errors) Errors {
	if len(es) == 0 {
		return nil
	}
	sortErrors(es)
	out := make(Errors, len(es))
	for i, e := range es {
		e.Msg = strings.ReplaceAll(l.secrets.Redact(e.Msg), "\n", "; ")
		out[i] = e
	}
	return out
}

var yamlSyntaxRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// parseFile parses one YAML file into its root mapping (nil when empty or
// broken) and expands environment references in it.
func (l *loader) parseFile(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		p := Pos{File: l.file}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlSyntaxRE.FindStringSubmatch(msg); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Col = 1
			msg = m[2]
		}
		l.errAt(p, "invalid YAML: %s", msg)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.errAt(l.pos(&extra), "only one YAML document per file is supported")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if l.isNull(root) {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		l.typeErr(root, "a mapping at the top level")
		return nil
	}
	if !l.guardAliases(root) {
		return nil
	}
	l.expandTree(root, map[*yaml.Node]bool{})
	return root
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
			l.warnAt(p, "include pattern %q matches no files", pat)
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
		data, err := os.ReadFile(f)
		if err != nil {
			l.errAt(Pos{File: f}, "cannot read included file: %s", fsReason(err))
			continue
		}
		l.file = f
		n := l.parseFile(data)
		if n == nil {
			continue
		}
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

// fsReason is a file error without the path (which callers already name).
func fsReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
