package browser

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/chromedp/kb"

	"github.com/vantage-monitoring/vantage/checks"
)

// action is what one browser step does.
type action string

const (
	actNavigate    action = "navigate"
	actClick       action = "click"
	actFill        action = "fill"
	actPress       action = "press"
	actWaitVisible action = "wait_visible"
	actAssertText  action = "assert_text"
	actAssertURL   action = "assert_url"
	actSleep       action = "sleep"
)

// stepPlan is one validated step.
type stepPlan struct {
	name     string
	act      action
	url      string // navigate
	selector string // click, fill, wait_visible, assert_text
	value    string // fill value
	key      string // press: the kb string
	keyName  string
	contains string // assert_text / assert_url
	equals   string // assert_text
	re       *regexp.Regexp
	sleep    time.Duration
	timeout  time.Duration // 0: the check's
}

// runPlan is a check prepared for running.
type runPlan struct {
	steps      []stepPlan
	pinHost    string
	blockGlobs []string
	screenshot string // on_failure | always | never
}

// keyNames maps `press:` names to chromedp key strings.
var keyNames = map[string]string{
	"enter": kb.Enter, "tab": kb.Tab, "escape": kb.Escape, "esc": kb.Escape,
	"backspace": kb.Backspace, "delete": kb.Delete, "space": " ",
	"arrowdown": kb.ArrowDown, "arrowup": kb.ArrowUp, "arrowleft": kb.ArrowLeft, "arrowright": kb.ArrowRight,
	"home": kb.Home, "end": kb.End, "pageup": kb.PageUp, "pagedown": kb.PageDown,
}

func plan(c *checks.Check) (*runPlan, error) {
	cfg := configOf(c)
	if len(cfg.Steps) == 0 {
		return nil, errors.New("a browser check needs steps")
	}
	pl := &runPlan{pinHost: strings.ToLower(c.PinHost()), screenshot: cfg.Screenshot}
	if pl.screenshot == "" {
		pl.screenshot = "on_failure"
	}
	for _, g := range cfg.BlockDomains {
		g = strings.ToLower(g)
		if _, err := path.Match(g, "x"); err != nil {
			return nil, fmt.Errorf("block_domains %q: %w", g, err)
		}
		pl.blockGlobs = append(pl.blockGlobs, g)
	}
	for i, s := range cfg.Steps {
		sp := stepPlan{name: s.Name, timeout: time.Duration(s.Timeout)}
		n := 0
		if s.Navigate != "" {
			sp.act, sp.url = actNavigate, s.Navigate
			n++
		}
		if s.Click != "" {
			sp.act, sp.selector = actClick, s.Click
			n++
		}
		if s.Fill != nil {
			sp.act, sp.selector, sp.value = actFill, s.Fill.Selector, s.Fill.Value
			n++
		}
		if s.Press != "" {
			sp.act, sp.keyName = actPress, s.Press
			if k, ok := keyNames[strings.ToLower(s.Press)]; ok {
				sp.key = k
			} else if len([]rune(s.Press)) == 1 {
				sp.key = s.Press
			} else {
				return nil, fmt.Errorf("step %d: unknown key %q", i+1, s.Press)
			}
			n++
		}
		if s.WaitVisible != "" {
			sp.act, sp.selector = actWaitVisible, s.WaitVisible
			n++
		}
		if s.AssertText != nil {
			sp.act, sp.selector = actAssertText, s.AssertText.Selector
			sp.contains, sp.equals = s.AssertText.Contains, s.AssertText.Equals
			n++
		}
		if s.AssertURL != nil {
			sp.act, sp.contains = actAssertURL, s.AssertURL.Contains
			if s.AssertURL.Regex != "" {
				re, err := regexp.Compile(s.AssertURL.Regex)
				if err != nil {
					return nil, fmt.Errorf("step %d: assert_url regex: %w", i+1, err)
				}
				sp.re = re
			}
			n++
		}
		if s.Sleep > 0 {
			sp.act, sp.sleep = actSleep, time.Duration(s.Sleep)
			n++
		}
		if n != 1 {
			return nil, fmt.Errorf("step %d: want exactly one action, got %d", i+1, n)
		}
		if sp.selector == "" && (sp.act == actClick || sp.act == actFill || sp.act == actWaitVisible || sp.act == actAssertText) {
			return nil, fmt.Errorf("step %d: %s needs a selector", i+1, sp.act)
		}
		if sp.name == "" {
			sp.name = fmt.Sprintf("%02d-%s", i+1, sp.act)
		}
		pl.steps = append(pl.steps, sp)
	}
	return pl, nil
}

// blocked reports whether host matches a block_domains glob.
func (pl *runPlan) blocked(host string) bool {
	host = strings.ToLower(host)
	for _, g := range pl.blockGlobs {
		if ok, _ := path.Match(g, host); ok {
			return true
		}
	}
	return false
}
