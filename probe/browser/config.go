package browser

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// Config is a browser check's own keys.
type Config struct {
	URL          string   `yaml:"url"`
	Steps        []Step   `yaml:"steps"`
	Screenshot   string   `yaml:"screenshot"`
	BlockDomains []string `yaml:"block_domains"`
}

// Step is one step of a journey: exactly one action.
type Step struct {
	Name        string         `yaml:"name"`
	Navigate    string         `yaml:"navigate"`
	Click       string         `yaml:"click"`
	WaitVisible string         `yaml:"wait_visible"`
	Fill        *FillAction    `yaml:"fill"`
	Press       string         `yaml:"press"`
	AssertText  *AssertText    `yaml:"assert_text"`
	AssertURL   *AssertURL     `yaml:"assert_url"`
	Sleep       model.Duration `yaml:"sleep"`
	Timeout     model.Duration `yaml:"timeout"`
	Pos         checks.Pos     `yaml:"-"`
}

// FillAction types value into the element matching selector.
type FillAction struct {
	Selector string `yaml:"selector"`
	Value    string `yaml:"value"`
}

// AssertText checks an element's text.
type AssertText struct {
	Selector string `yaml:"selector"`
	Contains string `yaml:"contains"`
	Equals   string `yaml:"equals"`
}

// AssertURL checks the page URL.
type AssertURL struct {
	Contains string `yaml:"contains"`
	Regex    string `yaml:"regex"`
}

// actions are a step's keys, in the order messages list them.
var actions = []string{"navigate", "click", "wait_visible", "fill", "press", "assert_text", "assert_url", "sleep"}

const actionList = "navigate, click, wait_visible, fill, press, assert_text, assert_url, sleep"

// httpStepKeys are the http kind's step keys, named when they turn up in
// a browser step.
var httpStepKeys = []string{"url", "method", "headers", "body", "follow_redirects", "expect", "extract"}

// UnknownKey explains an http step key in a browser step (see
// checks.KeyExplainer).
func (*Step) UnknownKey(key string) string {
	if slices.Contains(httpStepKeys, key) {
		return fmt.Sprintf("http field %q is not allowed in a browser step", key)
	}
	return ""
}

// PinHost is the url's host, or for a journey without url the first
// navigate step's: node pinning applies to it.
func (c *Config) PinHost() string {
	raw := c.URL
	for _, s := range c.Steps {
		if raw != "" {
			break
		}
		raw = s.Navigate
	}
	return probeutil.URLHost(raw)
}

// Traits implements the checks' optional method: each action is its own
// series, and pages report their requests by domain.
func (c *Config) Traits() checks.Traits {
	return checks.Traits{StepSeries: true, Pages: true, Steps: len(c.Steps)}
}

// Kind is the browser check kind. Options configure its prober; nil
// leaves the prober out (Chromium is not needed to load a config).
type Kind struct{ Options *Options }

// Type implements checks.Kind.
func (Kind) Type() string { return "browser" }

// NewConfig implements checks.Kind.
func (Kind) NewConfig() any { return &Config{} }

// Finish implements checks.Kind.
func (Kind) Finish(v *checks.Validator, c *checks.Check) {
	cfg, p := c.Spec.(*Config), c.Pos
	if cfg.URL != "" {
		v.CheckURL(cfg.URL, p, "url")
	}
	if v.Has(p, "expect") {
		// Accepted since the first release, never read: a journey's
		// assertions are its assert_text and assert_url steps.
		v.Warnf(v.KeyAt(p, "expect"), "key \"expect\" is not used by a browser check and is ignored; "+
			"its assert_text and assert_url steps are its assertions")
	}
	if len(cfg.Steps) == 0 {
		v.Errorf(p, "browser check needs steps")
	} else if cfg.URL == "" && cfg.Steps[0].Pos.Line != 0 && !v.Has(cfg.Steps[0].Pos, "navigate") {
		v.Errorf(cfg.Steps[0].Pos, "browser check needs url or a first navigate step")
	}
	switch cfg.Screenshot {
	case "":
		cfg.Screenshot = "on_failure"
	case "on_failure", "always", "never":
	default:
		v.Errorf(v.At(p, "screenshot"), "invalid screenshot %q (want on_failure, always or never)", cfg.Screenshot)
	}
	for i, d := range cfg.BlockDomains {
		if _, err := path.Match(d, ""); err != nil {
			v.Errorf(v.At(p, "block_domains", i), "invalid block_domains pattern %q: %v", d, err)
		}
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

func finishStep(v *checks.Validator, cfg *Config, s *Step, i int) {
	p := s.Pos
	var acts []string
	for _, k := range actions {
		if v.Has(p, k) {
			acts = append(acts, k)
		}
	}
	switch len(acts) {
	case 0:
		v.Errorf(p, "browser step needs exactly one action (%s)", actionList)
		return
	case 1:
	default:
		v.Errorf(p, "browser step has %d actions (%s), want exactly one", len(acts), strings.Join(acts, ", "))
	}
	for _, a := range acts {
		at := v.At(p, a)
		switch a {
		case "navigate":
			switch {
			case s.Navigate == "":
				v.Errorf(at, "navigate needs a URL")
			case strings.HasPrefix(s.Navigate, "/") && cfg.URL != "":
				// a path relative to the check's url
			default:
				v.CheckURL(s.Navigate, p, "navigate")
			}
		case "click", "wait_visible":
			if s.Click == "" && a == "click" || s.WaitVisible == "" && a == "wait_visible" {
				v.Errorf(at, "%s needs a selector", a)
			}
		case "press":
			if s.Press == "" {
				v.Errorf(at, "press needs a key")
			}
		case "fill":
			if s.Fill == nil || s.Fill.Selector == "" {
				v.Errorf(at, "fill needs selector")
			}
		case "assert_text":
			switch {
			case s.AssertText == nil || s.AssertText.Selector == "":
				v.Errorf(at, "assert_text needs selector")
			case s.AssertText.Contains == "" && s.AssertText.Equals == "":
				v.Errorf(at, "assert_text needs contains or equals")
			}
		case "assert_url":
			switch {
			case s.AssertURL == nil || s.AssertURL.Contains == "" && s.AssertURL.Regex == "":
				v.Errorf(at, "assert_url needs contains or regex")
			case s.AssertURL.Regex != "":
				if _, err := regexp.Compile(s.AssertURL.Regex); err != nil {
					v.Errorf(v.At(p, "assert_url", "regex"), "invalid assert_url regex %q: %v", s.AssertURL.Regex, err)
				}
			}
		case "sleep":
			if s.Sleep <= 0 {
				v.Errorf(at, "sleep must be > 0")
			}
		}
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("%02d-%s", i+1, acts[0])
	}
}

// SchemaDocs implements the schema's optional method of a kind.
func (Kind) SchemaDocs() checks.SchemaDocs {
	return checks.SchemaDocs{
		Types: map[string]string{
			"Step":       "One journey step: exactly one browser action.",
			"FillAction": "Type value into the element matching selector.",
			"AssertText": "Check an element's text.",
			"AssertURL":  "Check the page URL.",
		},
		Fields: map[string]string{
			"Check.url":           "The URL (http, browser). Node pinning applies to its host.",
			"Check.steps":         "A journey: HTTP requests (http) or browser actions (browser).",
			"Check.screenshot":    "Browser screenshots: on_failure (default), always or never.",
			"Check.block_domains": "Domains (globs) the browser must not load, e.g. *.tracking.example.",
			"Step.name":           "Step name: the step label (default NN-action).",
			"Step.navigate":       "Browser: load this URL.",
			"Step.click":          "Browser: click the element matching this CSS selector.",
			"Step.wait_visible":   "Browser: wait until the element matching this CSS selector is visible.",
			"Step.press":          "Browser: press this key, e.g. Enter.",
			"Step.sleep":          "Browser: wait this long.",
			"Step.timeout":        "Bound of this step.",
		},
		Enums: map[string][]any{"Check.screenshot": {"on_failure", "always", "never"}},
	}
}

// NewProber implements probe.Kind.
func (k Kind) NewProber(log zerolog.Logger) probe.Prober {
	if k.Options == nil {
		return nil
	}
	o := *k.Options
	o.Logger = log
	return New(o)
}

// configOf is c's browser config; a check built without one has none.
func configOf(c *checks.Check) *Config {
	if cfg, ok := c.Spec.(*Config); ok {
		return cfg
	}
	return &Config{}
}
