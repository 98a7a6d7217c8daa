package checks_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/vantage-monitoring/vantage/checks"
)

// jsonForms is s inside JSON strings as encoders write it: Go's with and
// without HTML escaping, and with "/" escaped as "\/".
func jsonForms(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if err := enc.Encode(map[string]string{"error": "bad: " + s}); err != nil {
			t.Fatal(err)
		}
		out = append(out, b.String(), strings.ReplaceAll(b.String(), "/", `\/`))
	}
	return out
}

// TestRedactEncodedForms: a secret is scrubbed as itself and as every
// encoding a target, a receiver or a library puts it in.
func TestRedactEncodedForms(t *testing.T) {
	const secret = `p@ss/w0rd&<x>"é"+ 🔑`
	r := checks.NewRedactor()
	if !r.Add(secret) {
		t.Fatal("Add did not track the secret")
	}
	forms := map[string]string{
		"literal":           secret,
		"QueryEscape":       url.QueryEscape(secret),
		"PathEscape":        url.PathEscape(secret),
		"lower-case hex":    strings.ToLower(url.QueryEscape(secret)),
		"Go %q":             fmt.Sprintf("%q", secret),
		"Go %+q":            fmt.Sprintf("%+q", secret),
		"Python json.dumps": `"p@ss/w0rd&<x>\"\u00e9\"+ \ud83d\udd11"`,
		"Python, \\/":       `"p@ss\/w0rd&<x>\"\u00e9\"+ \ud83d\udd11"`,
	}
	for i, j := range jsonForms(t, secret) {
		forms[fmt.Sprint("json ", i)] = j
	}
	for name, form := range forms {
		text := "error 401 from target: " + form + " (end)"
		got := r.Redact(text)
		if !strings.Contains(got, checks.Placeholder) || strings.Contains(got, "w0rd") {
			t.Errorf("%s form not redacted: %q -> %q", name, text, got)
		}
	}
	if got := r.Redact("nothing secret here: p@ss w0rd"); got != "nothing secret here: p@ss w0rd" {
		t.Errorf("unrelated text changed: %q", got)
	}
}

// TestRedactBasicAuth: the Authorization header a target echoes carries
// base64(user:password), in any alphabet, padded or not, and is redacted
// even when the password alone is too short to be.
func TestRedactBasicAuth(t *testing.T) {
	for _, pw := range []string{"correct horse?>battery", "ab"} {
		r := checks.NewRedactor()
		tracked := r.AddBasicAuth("synthetic-user", pw)
		if tracked != (len(pw) >= checks.MinSecretLen) {
			t.Errorf("AddBasicAuth(%q) = %v", pw, tracked)
		}
		cred := []byte("synthetic-user:" + pw)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			b64 := enc.EncodeToString(cred)
			for _, text := range []string{
				"Authorization: Basic " + b64,
				`{"error":"unauthorized","got":"Basic ` + b64 + `"}`,
				"auth=" + url.QueryEscape("Basic "+b64),
				strconv.Quote("Basic " + b64),
			} {
				if got := r.Redact(text); strings.Contains(got, b64[:len(b64)-2]) || !strings.Contains(got, checks.Placeholder) {
					t.Errorf("password %q: %q -> %q", pw, text, got)
				}
			}
		}
	}
}

// TestRedactWebhookURL: the token-like path segments and query values of a
// notifier URL are redacted on their own, in a JSON-escaped or URL-encoded
// URL, while the words of the path stay readable.
func TestRedactWebhookURL(t *testing.T) {
	const (
		raw   = "https://hooks.example/services/T0A1B2C3D/B0E4F5G6H/XXXXSECRETtoken1?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&format=json"
		token = "XXXXSECRETtoken1"
		key   = "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"
	)
	r := checks.NewRedactor()
	r.AddURL(raw)
	u, _ := url.Parse(raw)
	for _, text := range []string{
		"invalid token " + token,
		"invalid_token: " + strconv.Quote(token),
		`{"url":"https:\/\/hooks.example\/services\/T0A1B2C3D\/B0E4F5G6H\/XXXXSECRETtoken1"}`,
		"no such hook: " + url.QueryEscape(u.Path),
		"no such hook: " + url.PathEscape(u.Path),
		"POST " + raw + ": 404",
		"bad key " + key,
		"request " + u.RequestURI(),
	} {
		got := r.Redact(text)
		if strings.Contains(got, token) || strings.Contains(got, key) || strings.Contains(got, "SECRET") || !strings.Contains(got, checks.Placeholder) {
			t.Errorf("%q -> %q", text, got)
		}
	}
	// The path's words, short IDs and plain query values are not secrets.
	const plain = "the services of hooks.example answer json"
	if got := r.Redact(plain); got != plain {
		t.Errorf("plain text changed: %q", got)
	}
	for _, seg := range []string{"services", "alerts", "v2", "T000", "hooks-incoming"} {
		if checks.TokenLike(seg) {
			t.Errorf("TokenLike(%q) = true, want false", seg)
		}
	}
	for _, seg := range []string{"T0A1B2C3D", token, "abcdefghijklmnopqrstuvwxyz"} {
		if !checks.TokenLike(seg) {
			t.Errorf("TokenLike(%q) = false, want true", seg)
		}
	}
}

// TestRedactShortValues: values shorter than MinSecretLen are not
// tracked (the config loader warns about explicit ones).
func TestRedactShortValues(t *testing.T) {
	r := checks.NewRedactor()
	if r.Add("abc") {
		t.Error("a 3-character value was tracked")
	}
	if got := r.Redact("abcdef"); got != "abcdef" {
		t.Errorf("Redact = %q", got)
	}
}

// BenchmarkRedact: one reason through a redactor holding 1,000 secrets
// (each with its encoded forms).
func BenchmarkRedact(b *testing.B) {
	r := checks.NewRedactor()
	for i := range 1000 {
		r.AddBasicAuth("user", fmt.Sprintf("password-%04d/x", i))
	}
	reason := `json "error": "unauthorized: Basic dXNlcjpwYXNzd29yZC0wNTAwL3g=", expected ""`
	r.Redact(reason)
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(reason)
	}
}

// TestRedactURLWithoutSecrets: a URL with no credentials or tokens (an
// Alertmanager's base URL) stays readable in errors.
func TestRedactURLWithoutSecrets(t *testing.T) {
	r := checks.NewRedactor()
	r.AddURL("http://alertmanager.example:9093/")
	r.AddURL("https://hooks.example/vantage/alerts?format=json")
	const text = "POST http://alertmanager.example:9093/api/v2/alerts: 503; POST https://hooks.example/vantage/alerts?format=json: 500"
	if got := r.Redact(text); got != text {
		t.Errorf("Redact changed a URL without secrets: %q", got)
	}
}
