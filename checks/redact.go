package checks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/common/config"
)

// Redactor scrubs secret values out of text that leaves the process: logs,
// errors, `once` output, the database and the API. A secret is replaced
// as itself and in the forms it takes when a target, a receiver or a
// library echoes it: URL-encoded, JSON- or Go-quoted, and for basic auth
// the base64 of user:password that goes into the Authorization header.
//
// Values shorter than MinSecretLen are not tracked, since replacing them
// would mangle unrelated text; the config loader warns about explicit
// secrets (passwords, tokens) that short.
type Redactor struct {
	mu    sync.RWMutex
	forms map[string]bool
	repl  *strings.Replacer // nil until built; reset by every Add
}

// MinSecretLen is the shortest value that is redacted.
const MinSecretLen = 4

// Placeholder replaces every secret.
const Placeholder = "<secret>"

// NewRedactor returns an empty Redactor.
func NewRedactor() *Redactor { return &Redactor{} }

// Add records a secret value and its encoded forms. It reports whether
// the value is tracked (false when shorter than MinSecretLen).
func (r *Redactor) Add(s string) bool {
	if r == nil || len(s) < MinSecretLen {
		return false
	}
	r.addForms(encodedForms(s))
	return true
}

// AddBasicAuth records a basic-auth password and the base64 of
// user:password in every alphabet and padding (what an echoed
// Authorization or Proxy-Authorization header shows). The base64 is
// tracked even when the password alone is too short to be; the result
// reports whether the password itself is.
func (r *Redactor) AddBasicAuth(user, password string) bool {
	if r == nil || password == "" {
		return false
	}
	cred := []byte(user + ":" + password)
	var forms []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b := enc.EncodeToString(cred); len(b) >= MinSecretLen {
			forms = append(forms, encodedForms(b)...)
		}
	}
	r.addForms(forms)
	return r.Add(password)
}

// AddURL records the parts of a URL that carry credentials or tokens, as
// incoming-webhook URLs do: the password in it (with its basic-auth
// forms), every path segment that looks like a token (see TokenLike) and
// every query value that is not a plain word, and then the URL and its
// path and query whole. Echoed on their own (the last path segment in
// "invalid token ..."), escaped or inside a JSON-escaped URL, these are
// then scrubbed too. A URL with none of these ("http://am:9093") is not a
// secret: errors keep naming it.
func (r *Redactor) AddURL(raw string) {
	if r == nil || raw == "" {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		r.Add(raw)
		return
	}
	secret := false
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			r.AddBasicAuth(u.User.Username(), pw)
			secret = true
		}
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if v, err := url.PathUnescape(seg); err == nil && TokenLike(v) {
			r.Add(v)
			secret = true
		}
	}
	for _, vals := range u.Query() {
		for _, v := range vals {
			if len(v) >= MinSecretLen && (!plainWord(v) || len(v) >= 16) {
				r.Add(v)
				secret = true
			}
		}
	}
	if secret {
		r.Add(raw)
		r.Add(u.RequestURI())
	}
}

// AddHTTPConfig records the secrets of a Prometheus HTTP client config
// (a notifier's http_config): basic-auth password, authorization
// credentials, bearer token and OAuth2 client secret.
func (r *Redactor) AddHTTPConfig(hc *config.HTTPClientConfig) {
	if r == nil || hc == nil {
		return
	}
	if ba := hc.BasicAuth; ba != nil {
		r.AddBasicAuth(ba.Username, string(ba.Password))
	}
	if a := hc.Authorization; a != nil {
		r.Add(string(a.Credentials))
	}
	r.Add(string(hc.BearerToken))
	if o := hc.OAuth2; o != nil {
		r.Add(string(o.ClientSecret))
	}
	if p := hc.ProxyURL.URL; p != nil && p.User != nil {
		if pw, ok := p.User.Password(); ok {
			r.AddBasicAuth(p.User.Username(), pw)
		}
	}
}

// TokenLike reports whether a URL path segment looks like a token rather
// than a word of an API path ("services", "v2", "alerts"): at least 8
// characters with a digit or a capital letter, or at least 24 characters.
func TokenLike(s string) bool {
	if len(s) >= 24 {
		return true
	}
	if len(s) < 8 {
		return false
	}
	return strings.ContainsFunc(s, func(c rune) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' })
}

// plainWord is lower-case letters, '-' and '_' only ("json", "true").
func plainWord(s string) bool {
	return !strings.ContainsFunc(s, func(c rune) bool { return (c < 'a' || c > 'z') && c != '-' && c != '_' })
}

func (r *Redactor) addForms(forms []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.forms == nil {
		r.forms = map[string]bool{}
	}
	for _, f := range forms {
		if len(f) >= MinSecretLen && !r.forms[f] {
			r.forms[f] = true
			r.repl = nil
		}
	}
}

// encodedForms is s as it appears when URL-encoded (query and path, with
// upper- and lower-case hex), and each of those inside a JSON string (Go's
// encoding with and without HTML escaping, "\/" for "/" as PHP and others
// write it, and ASCII-only \u escapes) and inside a Go-quoted string (%q);
// a form with backslashes also with them doubled, as it reads when quoted
// once more (a JSON-escaped value in a %q reason, JSON inside JSON).
func encodedForms(s string) []string {
	seen := map[string]bool{}
	var forms []string
	add := func(f string) {
		if !seen[f] {
			seen[f] = true
			forms = append(forms, f)
		}
	}
	bases := []string{s}
	for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
		bases = append(bases, e, lowerHex(e))
	}
	for _, b := range bases {
		add(b)
		js := []string{asciiJSON(b), unquote(strconv.Quote(b)), unquote(strconv.QuoteToASCII(b))}
		for _, html := range []bool{true, false} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(html)
			if enc.Encode(b) == nil {
				js = append(js, unquote(strings.TrimSuffix(buf.String(), "\n")))
			}
		}
		for _, j := range js {
			add(j)
			add(strings.ReplaceAll(j, "/", `\/`))
		}
	}
	for _, f := range forms {
		if strings.Contains(f, `\`) {
			add(strings.ReplaceAll(f, `\`, `\\`))
		}
	}
	return forms
}

func unquote(q string) string { return q[1 : len(q)-1] }

// lowerHex rewrites %XX escapes with lower-case hex digits.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'A' && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}

// asciiJSON is the body of a JSON string with every non-ASCII character as
// \uXXXX (surrogate pairs beyond the BMP), as Python's json.dumps writes.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, c)
		case c < utf8.RuneSelf:
			b.WriteRune(c)
		case c > 0xffff:
			c -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(c>>10), 0xdc00+(c&0x3ff))
		default:
			fmt.Fprintf(&b, `\u%04x`, c)
		}
	}
	return b.String()
}

// Redact returns s with every recorded secret form replaced by Placeholder.
func (r *Redactor) Redact(s string) string {
	if r == nil || s == "" {
		return s
	}
	r.mu.RLock()
	repl, n := r.repl, len(r.forms)
	r.mu.RUnlock()
	if n == 0 {
		return s
	}
	if repl == nil {
		repl = r.build()
	}
	return repl.Replace(s)
}

// build makes the replacer once per change, not per Add: a config with
// thousands of secrets adds them one by one.
func (r *Redactor) build() *strings.Replacer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.repl != nil {
		return r.repl
	}
	forms := make([]string, 0, len(r.forms))
	for f := range r.forms {
		forms = append(forms, f)
	}
	// Longest first, so a secret containing another is replaced whole
	// (the replacer tries its arguments in order at each position).
	sort.Slice(forms, func(i, j int) bool {
		if len(forms[i]) != len(forms[j]) {
			return len(forms[i]) > len(forms[j])
		}
		return forms[i] < forms[j]
	})
	args := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		args = append(args, f, Placeholder)
	}
	r.repl = strings.NewReplacer(args...)
	return r.repl
}
