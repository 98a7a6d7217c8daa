package httpprobe

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
)

// Defaults for settings the loader normally fills; repeated here so a
// hand-built Check (tests, `once`) still runs with sane bounds.
const (
	defaultMaxRedirects = 10
	defaultMaxBodyBytes = 10 << 20
	defaultUserAgent    = "vantage"
)

// plan is a check compiled for fast repeated runs: templates parsed, regexes
// compiled, files read. It must not point back at the *checks.Check it came
// from, or the weak-keyed cache would keep that check alive forever.
type plan struct {
	pinHost      string
	maxBody      int64
	maxRedirects int
	journey      bool
	steps        []stepPlan
	// run-wide expectations of a journey (the check's own expect block).
	maxDuration time.Duration
	tlsMinDays  int
	// secrets known from the check itself (URL passwords, auth), scrubbed
	// from every reason on top of the target's Redact.
	scrub *checks.Redactor
}

type stepPlan struct {
	name    string
	method  string
	url     tmpl
	headers []headerPlan
	body    tmpl
	hasBody bool
	follow  bool
	// auth
	basicUser, basicPass string
	hasBasic             bool
	bearer               string
	expect               expectPlan
	extract              []extractPlan
	needBody             bool // some assertion or extract reads the body
	hasUA                bool
}

type headerPlan struct {
	name string
	val  tmpl
}

type extractPlan struct{ name, path string }

// tmpl is a string that may hold {{ .var }} placeholders.
type tmpl struct {
	lit  string
	t    *template.Template
	vars []string // variables referenced, checked before executing
}

func newTmpl(name, s string) (tmpl, error) {
	if !strings.Contains(s, "{{") {
		return tmpl{lit: s}, nil
	}
	t, err := template.New(name).Option("missingkey=error").Parse(s)
	if err != nil {
		return tmpl{}, fmt.Errorf("%s: %w", name, err)
	}
	var vars []string
	if t.Tree != nil {
		collectVars(t.Tree.Root, &vars)
	}
	return tmpl{t: t, vars: vars}, nil
}

// render fills in vars; a referenced variable no earlier step set is
// reported by name.
func (t *tmpl) render(vars map[string]string) (string, error) {
	if t.t == nil {
		return t.lit, nil
	}
	for _, v := range t.vars {
		if _, ok := vars[v]; !ok {
			return "", fmt.Errorf("variable %q is not set (no earlier step extracted it)", v)
		}
	}
	var sb strings.Builder
	if err := t.t.Execute(&sb, vars); err != nil {
		return "", err
	}
	return sb.String(), nil
}

func collectVars(n parse.Node, out *[]string) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			collectVars(c, out)
		}
	case *parse.ActionNode:
		collectVars(n.Pipe, out)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			collectVars(c, out)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			collectVars(a, out)
		}
	case *parse.FieldNode:
		if len(n.Ident) > 0 {
			*out = append(*out, n.Ident[0])
		}
	case *parse.IfNode:
		collectVars(n.Pipe, out)
		collectVars(n.List, out)
		collectVars(n.ElseList, out)
	case *parse.WithNode:
		collectVars(n.Pipe, out)
		collectVars(n.List, out)
		collectVars(n.ElseList, out)
	case *parse.RangeNode:
		collectVars(n.Pipe, out)
		collectVars(n.List, out)
		collectVars(n.ElseList, out)
	}
}

// plan returns the compiled plan for c, building it on first use. Entries
// are dropped when the config they came from is garbage collected, so
// reloads do not leak.
func (p *Prober) plan(c *checks.Check) (*plan, error) {
	if pl, ok := p.plans.get(c); ok {
		return pl, nil
	}
	pl, err := compile(c)
	if err != nil {
		// Not cached: the error is returned on every run until a reload.
		return nil, err
	}
	return p.plans.put(c, pl), nil
}

func compile(c *checks.Check) (*plan, error) {
	cfg := configOf(c)
	req := cfg.HTTP
	if req == nil {
		req = &HTTPRequest{}
	}
	pl := &plan{
		pinHost:      c.PinHost(),
		maxBody:      int64(req.MaxBodyBytes),
		maxRedirects: req.MaxRedirects,
		journey:      len(cfg.Steps) > 0,
	}
	if pl.maxBody <= 0 {
		pl.maxBody = defaultMaxBodyBytes
	}
	if pl.maxRedirects <= 0 {
		pl.maxRedirects = defaultMaxRedirects
	}
	// Encoded forms too: a target may echo the Authorization header.
	secrets := checks.NewRedactor()

	// Request defaults shared by every step of a journey.
	user, pass, hasBasic := "", "", false
	if ba := req.BasicAuth; ba != nil {
		user, pass, hasBasic = ba.Username, ba.Password, true
		secrets.AddBasicAuth(user, pass)
	}
	// *_file secrets were read by the config loader (relative to the
	// config file, size-limited) into the value fields: one place, one rule.
	bearer := req.BearerToken
	secrets.Add(bearer)
	follow := req.FollowRedirects == nil || *req.FollowRedirects
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}

	type rawStep struct {
		name, url, method, body string
		hasBody                 bool
		headers                 map[string]string
		follow                  bool
		expect                  *checks.Expect
		extract                 map[string]string
	}
	var raws []rawStep
	if pl.journey {
		for i, s := range cfg.Steps {
			r := rawStep{name: s.Name, url: s.URL, method: s.Method, body: s.Body, hasBody: s.Body != "",
				follow: follow, expect: s.Expect, extract: s.Extract}
			if r.name == "" {
				r.name = fmt.Sprintf("%02d-request", i+1)
			}
			if r.method == "" {
				r.method = method
			}
			if s.FollowRedirects != nil {
				r.follow = *s.FollowRedirects
			}
			r.headers = make(map[string]string, len(req.Headers)+len(s.Headers))
			for k, v := range req.Headers {
				r.headers[k] = v
			}
			for k, v := range s.Headers {
				r.headers[k] = v
			}
			raws = append(raws, r)
		}
		if e := c.Expect; e != nil {
			pl.maxDuration = time.Duration(e.MaxDuration)
			pl.tlsMinDays = e.TLSMinDays
		}
	} else {
		body := req.Body
		raws = append(raws, rawStep{url: cfg.URL, method: method, body: body, hasBody: body != "",
			headers: req.Headers, follow: follow, expect: c.Expect})
	}

	for _, r := range raws {
		sp := stepPlan{name: r.name, method: strings.ToUpper(r.method), follow: r.follow, hasBody: r.hasBody,
			basicUser: user, basicPass: pass, hasBasic: hasBasic, bearer: bearer}
		var err error
		if sp.url, err = newTmpl("url", r.url); err != nil {
			return nil, stepErr(pl.journey, r.name, err)
		}
		if sp.url.t == nil {
			u, err := url.Parse(r.url)
			if err != nil {
				return nil, stepErr(pl.journey, r.name, fmt.Errorf("invalid url: %w", err))
			}
			if pw, ok := u.User.Password(); ok {
				secrets.AddBasicAuth(u.User.Username(), pw)
			}
		}
		if sp.body, err = newTmpl("body", r.body); err != nil {
			return nil, stepErr(pl.journey, r.name, err)
		}
		names := make([]string, 0, len(r.headers))
		for k := range r.headers {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v, err := newTmpl("header "+k, r.headers[k])
			if err != nil {
				return nil, stepErr(pl.journey, r.name, err)
			}
			sp.headers = append(sp.headers, headerPlan{name: k, val: v})
			if strings.EqualFold(k, "User-Agent") {
				sp.hasUA = true
			}
		}
		if sp.expect, err = compileExpect(r.expect); err != nil {
			return nil, stepErr(pl.journey, r.name, err)
		}
		enames := make([]string, 0, len(r.extract))
		for k := range r.extract {
			enames = append(enames, k)
		}
		sort.Strings(enames)
		for _, k := range enames {
			sp.extract = append(sp.extract, extractPlan{name: k, path: r.extract[k]})
		}
		sp.needBody = sp.expect.readsBody() || len(sp.extract) > 0
		pl.steps = append(pl.steps, sp)
	}

	pl.scrub = secrets
	return pl, nil
}

func stepErr(journey bool, name string, err error) error {
	if journey {
		return fmt.Errorf("step %q: %w", name, err)
	}
	return err
}

// anchored compiles a regex the way Prometheus does for full-value matches.
func anchored(re string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?s:" + re + ")$")
}
