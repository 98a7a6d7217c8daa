package httpprobe

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// Config is an http check's own keys: one request (url and http:) or a
// journey of steps.
type Config struct {
	URL   string       `yaml:"url"`
	HTTP  *HTTPRequest `yaml:"http"`
	Steps []Step       `yaml:"steps"`
}

// HTTPRequest is the request of a single-request http check; with steps,
// the request defaults every step shares.
type HTTPRequest struct {
	Method          string            `yaml:"method"`
	Headers         map[string]string `yaml:"headers"`
	Body            string            `yaml:"body"`
	BodyFile        string            `yaml:"body_file"`
	FollowRedirects *bool             `yaml:"follow_redirects"`
	MaxRedirects    int               `yaml:"max_redirects"`
	MaxBodyBytes    checks.ByteSize   `yaml:"max_body_bytes"`
	BasicAuth       *BasicAuth        `yaml:"basic_auth"`
	BearerToken     string            `yaml:"bearer_token"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	Pos             checks.Pos        `yaml:"-"`
}

// BasicAuth for HTTP checks.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Step is one request of a journey.
type Step struct {
	Name            string            `yaml:"name"`
	URL             string            `yaml:"url"`
	Method          string            `yaml:"method"`
	Headers         map[string]string `yaml:"headers"`
	Body            string            `yaml:"body"`
	FollowRedirects *bool             `yaml:"follow_redirects"`
	Expect          *checks.Expect    `yaml:"expect"`
	Extract         map[string]string `yaml:"extract"` // variable -> gjson path
	// Timeout has always been accepted in an http step; runs are bounded
	// by the check's timeout.
	Timeout model.Duration `yaml:"timeout"`
	Pos     checks.Pos     `yaml:"-"`
}

// Expect is an http check's own expect keys (its steps' too): what the
// response must be.
type Expect struct {
	Status          []int                 `yaml:"status"`
	BodyContains    []string              `yaml:"body_contains"`
	BodyRegex       []string              `yaml:"body_regex"`
	BodyNotContains []string              `yaml:"body_not_contains"`
	Headers         map[string]string     `yaml:"headers"` // header name -> regex (anchored)
	JSON            map[string]JSONExpect `yaml:"json"`
}

// JSONExpect is one expectation on a gjson path of a JSON response.
type JSONExpect struct {
	Exists   *bool      `yaml:"exists"`
	Eq       any        `yaml:"eq"`
	Ne       any        `yaml:"ne"`
	Gt       *float64   `yaml:"gt"`
	Gte      *float64   `yaml:"gte"`
	Lt       *float64   `yaml:"lt"`
	Lte      *float64   `yaml:"lte"`
	Contains string     `yaml:"contains"`
	Regex    string     `yaml:"regex"`
	Pos      checks.Pos `yaml:"-"`
}

// browserActions are the browser kind's step keys, named when they turn
// up in an http step.
var browserActions = []string{"navigate", "click", "wait_visible", "fill", "press", "assert_text", "assert_url", "sleep"}

// UnknownKey explains a browser action in an http step (see
// checks.KeyExplainer).
func (*Step) UnknownKey(key string) string {
	if slices.Contains(browserActions, key) {
		return fmt.Sprintf("browser action %q is not allowed in an http step", key)
	}
	return ""
}

// DefaultHTTPRequest is the request an http check makes unless it says
// otherwise. Treat it as a constant: SetDefaults copies it.
var DefaultHTTPRequest = HTTPRequest{
	Method:          "GET",
	FollowRedirects: pointer(true),
	MaxRedirects:    10,
	MaxBodyBytes:    10 << 20,
}

func pointer[T any](v T) *T { return &v }

// SetDefaults presets h with DefaultHTTPRequest (see checks.Defaulter).
func (h *HTTPRequest) SetDefaults() {
	*h = DefaultHTTPRequest
	if DefaultHTTPRequest.FollowRedirects != nil {
		h.FollowRedirects = pointer(*DefaultHTTPRequest.FollowRedirects)
	}
}

// PinHost is the url's host, or for a journey without url the first
// step's that has one: node pinning applies to it.
func (c *Config) PinHost() string {
	raw := c.URL
	for _, s := range c.Steps {
		if raw != "" {
			break
		}
		raw = s.URL
	}
	return probeutil.URLHost(raw)
}

// Traits implements the checks' optional method: a journey's steps are
// series when there are several.
func (c *Config) Traits() checks.Traits { return checks.Traits{Steps: len(c.Steps)} }

// Kind is the http check kind.
type Kind struct{}

// Type implements checks.Kind.
func (Kind) Type() string { return "http" }

// NewConfig implements checks.Kind.
func (Kind) NewConfig() any { return &Config{} }

// NewExpect implements checks.ExpectKind.
func (Kind) NewExpect() any { return &Expect{} }

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Finish implements checks.Kind.
func (Kind) Finish(v *checks.Validator, c *checks.Check) {
	cfg, p := c.Spec.(*Config), c.Pos
	if cfg.HTTP == nil {
		h := &HTTPRequest{}
		h.SetDefaults()
		h.Pos = p
		cfg.HTTP = h
	}
	finishRequest(v, cfg.HTTP, len(cfg.Steps) > 0)
	finishExpect(v, c.Expect)
	if cfg.URL != "" {
		v.CheckURL(cfg.URL, p, "url")
	} else if len(cfg.Steps) == 0 {
		v.Errorf(p, "http check needs url or steps")
	}
	names := map[string]checks.Pos{}
	for i := range cfg.Steps {
		s := &cfg.Steps[i]
		if s.Pos.Line == 0 {
			continue
		}
		finishStep(v, cfg, s, i)
		v.Unique(names, "step name", s.Name, v.At(s.Pos, "name"))
	}
}

func finishRequest(v *checks.Validator, h *HTTPRequest, withSteps bool) {
	p := h.Pos
	h.Method = strings.ToUpper(h.Method)
	if !checks.ValidMethod(h.Method) {
		v.Errorf(v.At(p, "method"), "invalid method %q", h.Method)
	}
	if withSteps {
		for _, k := range []string{"method", "body", "body_file"} {
			if v.Has(p, k) {
				v.Errorf(v.KeyAt(p, k), "http.%s is not allowed with steps (set it on each step)", k)
			}
		}
	}
	if h.MaxBodyBytes <= 0 {
		v.Errorf(v.At(p, "max_body_bytes"), "max_body_bytes must be > 0")
	}
	if h.MaxRedirects < 0 {
		v.Errorf(v.At(p, "max_redirects"), "max_redirects must be >= 0")
	}
	v.ReadSecretFile(p, nil, "body", &h.Body, "body_file", h.BodyFile)
	v.ReadSecretFile(p, nil, "bearer_token", &h.BearerToken, "bearer_token_file", h.BearerTokenFile)
	if h.BearerToken != "" && !v.Secrets().Add(h.BearerToken) {
		v.WarnShortSecret(v.At(p, "bearer_token"), "bearer_token")
	}
	if b := h.BasicAuth; b != nil {
		v.ReadSecretFile(p, []any{"basic_auth"}, "password", &b.Password, "password_file", b.PasswordFile)
		// The base64 of user:password is redacted too (an echoed
		// Authorization header), even when the password is too short.
		if b.Password != "" && !v.Secrets().AddBasicAuth(b.Username, b.Password) {
			v.WarnShortSecret(v.At(p, "basic_auth", "password"), "basic_auth.password")
		}
		if b.Username == "" {
			v.Errorf(v.At(p, "basic_auth"), "basic_auth needs username")
		}
		if h.BearerToken != "" {
			v.Errorf(v.KeyAt(p, "basic_auth"), "basic_auth and bearer_token are mutually exclusive")
		}
	}
}

func finishStep(v *checks.Validator, cfg *Config, s *Step, i int) {
	p := s.Pos
	if s.URL == "" {
		v.Errorf(v.At(p, "url"), "http step needs url")
	} else {
		v.CheckURL(s.URL, p, "url")
		v.CheckTemplate(s.URL, p, "url")
	}
	if s.Method == "" {
		s.Method = "GET"
	}
	s.Method = strings.ToUpper(s.Method)
	if !checks.ValidMethod(s.Method) {
		v.Errorf(v.At(p, "method"), "invalid method %q", s.Method)
	}
	if s.FollowRedirects == nil && cfg.HTTP != nil && cfg.HTTP.FollowRedirects != nil {
		s.FollowRedirects = pointer(*cfg.HTTP.FollowRedirects)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		v.CheckTemplate(s.Headers[k], p, "headers", k)
	}
	v.CheckTemplate(s.Body, p, "body")
	if s.Expect != nil {
		v.FinishExpect(s.Expect)
		finishExpect(v, s.Expect)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Extract)) {
		if !identRE.MatchString(k) {
			v.Errorf(v.KeyAt(p, "extract", k), "invalid extract variable name %q (must match %s)", k, identRE)
		} else if s.Extract[k] == "" {
			v.Errorf(v.At(p, "extract", k), "extract %q needs a JSON path", k)
		}
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("%02d-%s", i+1, strings.ToLower(s.Method))
	}
}

// finishExpect validates the http keys of an expect mapping.
func finishExpect(v *checks.Validator, ce *checks.Expect) {
	if ce == nil {
		return
	}
	e, ok := ce.Spec.(*Expect)
	if !ok {
		return
	}
	p := ce.Pos
	for i, st := range e.Status {
		if st < 100 || st > 599 {
			v.Errorf(v.At(p, "status", i), "invalid status code %d (want 100-599)", st)
		}
	}
	for i, re := range e.BodyRegex {
		if _, err := regexp.Compile(re); err != nil {
			v.Errorf(v.At(p, "body_regex", i), "invalid body_regex %q: %v", re, err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(e.Headers)) {
		if _, err := regexp.Compile("^(?:" + e.Headers[name] + ")$"); err != nil {
			v.Errorf(v.At(p, "headers", name), "invalid regex for header %q: %v", name, err)
		}
	}
	for _, jp := range slices.Sorted(maps.Keys(e.JSON)) {
		je := e.JSON[jp]
		if je.Regex != "" {
			if _, err := regexp.Compile(je.Regex); err != nil {
				v.Errorf(v.At(je.Pos, "regex"), "invalid json regex %q: %v", je.Regex, err)
			}
		}
	}
}

// SchemaDocs implements the schema's optional method of a kind.
func (Kind) SchemaDocs() checks.SchemaDocs {
	return checks.SchemaDocs{
		Types: map[string]string{
			"HTTPRequest": "The request of a single-request http check (a journey uses steps instead).",
			"BasicAuth":   "HTTP basic authentication.",
			"Step":        "One journey step: an HTTP request.",
			"JSONExpect":  "An expectation on a gjson path of a JSON response.",
		},
		Fields: map[string]string{
			"Check.url":                     "The URL (http, browser). Node pinning applies to its host.",
			"Check.http":                    "The request of a single-request http check.",
			"Check.steps":                   "A journey: HTTP requests (http) or browser actions (browser).",
			"HTTPRequest.max_body_bytes":    "Bound of the response body read (default 10MiB).",
			"HTTPRequest.follow_redirects":  "Follow redirects (default true).",
			"HTTPRequest.bearer_token_file": "Read the bearer token from this file.",
			"HTTPRequest.body_file":         "Read the request body from this file.",
			"Step.name":                     "Step name: the step label (default NN-method).",
			"Step.extract":                  "Variable to gjson path; later steps use {{ .variable }}.",
			"Step.timeout":                  "Bound of this step.",
			"Expect.status":                 "Acceptable status codes (http; default 2xx).",
			"Expect.body_contains":          "Substrings the body must contain (http).",
			"Expect.body_not_contains":      "Substrings the body must not contain (http).",
			"Expect.body_regex":             "Regular expressions the body must match (http).",
			"Expect.headers":                "Header name to anchored regular expression (http).",
			"Expect.json":                   "gjson path to expectation, e.g. {\"items.#\": {gte: 1}} (http).",
		},
	}
}

// NewProber implements probe.Kind.
func (Kind) NewProber(log zerolog.Logger) probe.Prober { return New(log) }

// configOf is c's http config; a check built without one has none.
func configOf(c *checks.Check) *Config {
	if cfg, ok := c.Spec.(*Config); ok {
		return cfg
	}
	return &Config{}
}
