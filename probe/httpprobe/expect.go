package httpprobe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/durfmt"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// expectPlan is a compiled checks.Expect.
type expectPlan struct {
	status      []int
	contains    [][]byte
	notContains [][]byte
	regex       []*regexp.Regexp
	headers     []headerExpect
	maxDuration time.Duration
	tlsMinDays  int
	json        []jsonExpect
}

type headerExpect struct {
	name string
	src  string
	re   *regexp.Regexp
}

type jsonExpect struct {
	path string
	e    JSONExpect
	re   *regexp.Regexp
}

func compileExpect(ce *checks.Expect) (expectPlan, error) {
	var ep expectPlan
	if ce == nil {
		return ep, nil
	}
	ep.maxDuration = time.Duration(ce.MaxDuration)
	ep.tlsMinDays = ce.TLSMinDays
	e, _ := ce.Spec.(*Expect)
	if e == nil {
		return ep, nil
	}
	ep.status = e.Status
	for _, s := range e.BodyContains {
		ep.contains = append(ep.contains, []byte(s))
	}
	for _, s := range e.BodyNotContains {
		ep.notContains = append(ep.notContains, []byte(s))
	}
	for _, s := range e.BodyRegex {
		re, err := regexp.Compile(s)
		if err != nil {
			return ep, fmt.Errorf("body_regex: %w", err)
		}
		ep.regex = append(ep.regex, re)
	}
	names := make([]string, 0, len(e.Headers))
	for k := range e.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		re, err := anchored(e.Headers[k])
		if err != nil {
			return ep, fmt.Errorf("expect header %q: %w", k, err)
		}
		ep.headers = append(ep.headers, headerExpect{name: k, src: e.Headers[k], re: re})
	}
	paths := make([]string, 0, len(e.JSON))
	for k := range e.JSON {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	for _, k := range paths {
		je := jsonExpect{path: k, e: e.JSON[k]}
		if je.e.Regex != "" {
			re, err := regexp.Compile(je.e.Regex)
			if err != nil {
				return ep, fmt.Errorf("json %q regex: %w", k, err)
			}
			je.re = re
		}
		ep.json = append(ep.json, je)
	}
	return ep, nil
}

func (ep *expectPlan) readsBody() bool {
	return len(ep.contains)+len(ep.notContains)+len(ep.regex)+len(ep.json) > 0
}

// response is what assertions look at.
type response struct {
	status       int
	header       http.Header
	body         []byte
	duration     time.Duration
	certNotAfter time.Time // zero without TLS
	now          time.Time
	// redact scrubs secrets from response text before it is cut for a
	// reason: cut first, a secret at the cut would leak its prefix.
	redact func(string) string
}

// excerpt is response text as a reason quotes it: redacted, then cut.
func (r *response) excerpt(s string) string {
	if r.redact != nil {
		s = r.redact(s)
	}
	return truncate(s)
}

// check evaluates the expectations in their documented order and returns
// the first that fails, or "".
func (ep *expectPlan) check(r *response) string {
	if len(ep.status) == 0 {
		if r.status < 200 || r.status > 299 {
			return fmt.Sprintf("status %d, expected 2xx", r.status)
		}
	} else if !containsInt(ep.status, r.status) {
		return fmt.Sprintf("status %d, expected one of %v", r.status, ep.status)
	}
	for _, s := range ep.contains {
		if !bytes.Contains(r.body, s) {
			return fmt.Sprintf("body does not contain %q", s)
		}
	}
	for _, s := range ep.notContains {
		if bytes.Contains(r.body, s) {
			return fmt.Sprintf("body contains %q", s)
		}
	}
	for _, re := range ep.regex {
		if !re.Match(r.body) {
			return fmt.Sprintf("body does not match regex %q", re.String())
		}
	}
	for _, h := range ep.headers {
		vals := r.header.Values(h.name)
		if len(vals) == 0 {
			return fmt.Sprintf("header %q is missing, expected %q", h.name, h.src)
		}
		ok := false
		for _, v := range vals {
			if h.re.MatchString(v) {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Sprintf("header %q: %q does not match %q", h.name, r.excerpt(vals[0]), h.src)
		}
	}
	if ep.maxDuration > 0 && r.duration > ep.maxDuration {
		return fmt.Sprintf("duration %s exceeds max_duration %s",
			durfmt.Format(r.duration, durfmt.Setting), durfmt.Format(ep.maxDuration, durfmt.Setting))
	}
	if ep.tlsMinDays > 0 {
		if r.certNotAfter.IsZero() {
			return "tls_min_days set but the response was not served over TLS"
		}
		if s := probeutil.CertReason(r.certNotAfter, r.now, ep.tlsMinDays); s != "" {
			return s
		}
	}
	if len(ep.json) > 0 {
		if !gjson.ValidBytes(r.body) {
			return "body is not valid JSON"
		}
		for i := range ep.json {
			if s := ep.json[i].check(r); s != "" {
				return s
			}
		}
	}
	return ""
}

func (je *jsonExpect) check(r *response) string {
	res := gjson.GetBytes(r.body, je.path)
	e := &je.e
	if e.Exists != nil {
		if *e.Exists && !res.Exists() {
			return fmt.Sprintf("json %q: missing", je.path)
		}
		if !*e.Exists && res.Exists() {
			return fmt.Sprintf("json %q: %s exists, expected absent", je.path, r.excerpt(res.Raw))
		}
	}
	if !res.Exists() {
		if e.Eq != nil || e.Ne != nil || e.Gt != nil || e.Gte != nil || e.Lt != nil || e.Lte != nil ||
			e.Contains != "" || je.re != nil {
			return fmt.Sprintf("json %q: missing", je.path)
		}
		return ""
	}
	raw := r.excerpt(res.Raw)
	if e.Eq != nil && !jsonEqual(res, e.Eq) {
		return fmt.Sprintf("json %q: %s, expected %s", je.path, raw, jsonText(e.Eq))
	}
	if e.Ne != nil && jsonEqual(res, e.Ne) {
		return fmt.Sprintf("json %q: %s, expected anything but %s", je.path, raw, jsonText(e.Ne))
	}
	for _, c := range [...]struct {
		op  string
		ref *float64
		ok  func(a, b float64) bool
	}{
		{">", e.Gt, func(a, b float64) bool { return a > b }},
		{">=", e.Gte, func(a, b float64) bool { return a >= b }},
		{"<", e.Lt, func(a, b float64) bool { return a < b }},
		{"<=", e.Lte, func(a, b float64) bool { return a <= b }},
	} {
		if c.ref == nil {
			continue
		}
		n, ok := jsonNumber(res)
		if !ok {
			return fmt.Sprintf("json %q: %s is not a number", je.path, raw)
		}
		if !c.ok(n, *c.ref) {
			return fmt.Sprintf("json %q: %s is not %s %s", je.path, raw, c.op, strconv.FormatFloat(*c.ref, 'g', -1, 64))
		}
	}
	if e.Contains != "" && !strings.Contains(res.String(), e.Contains) {
		return fmt.Sprintf("json %q: %s does not contain %q", je.path, raw, e.Contains)
	}
	if je.re != nil && !je.re.MatchString(res.String()) {
		return fmt.Sprintf("json %q: %s does not match %q", je.path, raw, e.Regex)
	}
	return ""
}

// extractVars sets vars from the JSON body for a step's `extract:`, or
// returns why it could not.
func extractVars(extract []extractPlan, body []byte, vars map[string]string) string {
	if len(extract) == 0 {
		return ""
	}
	if !gjson.ValidBytes(body) {
		return "extract: body is not valid JSON"
	}
	for _, ex := range extract {
		res := gjson.GetBytes(body, ex.path)
		if !res.Exists() {
			return fmt.Sprintf("extract %q: json path %q not found", ex.name, ex.path)
		}
		vars[ex.name] = res.String()
	}
	return ""
}

// jsonNumber accepts numbers and numeric strings, since many APIs send
// counts as strings.
func jsonNumber(res gjson.Result) (float64, bool) {
	switch res.Type {
	case gjson.Number:
		return res.Num, true
	case gjson.String:
		f, err := strconv.ParseFloat(strings.TrimSpace(res.Str), 64)
		return f, err == nil
	}
	return 0, false
}

func jsonEqual(res gjson.Result, want any) bool {
	switch w := want.(type) {
	case bool:
		return (res.Type == gjson.True || res.Type == gjson.False) && res.Bool() == w
	case string:
		return res.Type == gjson.String && res.Str == w
	case int:
		return res.Type == gjson.Number && res.Num == float64(w)
	case int64:
		return res.Type == gjson.Number && res.Num == float64(w)
	case uint64:
		return res.Type == gjson.Number && res.Num == float64(w)
	case float64:
		return res.Type == gjson.Number && res.Num == w
	default:
		// Lists and maps: compare canonical JSON.
		b, err := json.Marshal(w)
		if err != nil {
			return false
		}
		var got any
		if json.Unmarshal([]byte(res.Raw), &got) != nil {
			return false
		}
		g, _ := json.Marshal(got)
		return bytes.Equal(b, g)
	}
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// truncate keeps values quoted in reasons short and on one line: a
// pretty-printed JSON value is compacted (its newlines would break log
// lines and the timeline's table), and the cut falls between runes.
func truncate(s string) string {
	const max = 80
	if strings.ContainsAny(s, "\r\n") {
		var b bytes.Buffer
		if json.Compact(&b, []byte(s)) == nil {
			s = b.String()
		} else {
			s = strings.Join(strings.Fields(s), " ")
		}
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// formatSize prints a byte count the way it is configured: 10MiB.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
