package alerting

// What every HTTP notifier (webhook, slack, alertmanager) shares: one POST
// attempt with the URL kept secret, JSON encoding, and reading a
// notification the way receivers expect it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/common/config"
	"github.com/rs/zerolog"

	"github.com/vantage-monitoring/vantage/checks"
)

// Limits on what is read back from a receiver: enough for a useful log
// line, never enough for a hostile receiver to matter.
const (
	errorBodyBytes = 512
	redactMargin   = 8 << 10 // read beyond errorBodyBytes so a secret at the cut is whole when redacted
	drainBytes     = 64 << 10
	defaultTimeout = 10 * time.Second
)

// Poster makes single JSON POST attempts to one receiver URL. The URL is a
// secret (incoming-webhook URLs carry their token in the path), so errors
// and logs name only its scheme and host.
type Poster struct {
	name     string
	endpoint string // secret
	target   string // scheme://host, safe to show
	secrets  *checks.Redactor
	client   *http.Client
	timeout  time.Duration
	ua       string
	log      zerolog.Logger
}

// NewPoster validates endpoint (an absolute http(s) URL, usually cfg.URL or
// derived from it) and builds the HTTP client from cfg.HTTPConfig, with
// redirects never followed: Go would turn a redirected POST into a GET,
// and a 307 would re-send the alerts to a host nobody configured.
func NewPoster(cfg checks.Notifier, endpoint string, o NotifierOptions) (*Poster, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Never echo the URL or the parse error (which quotes it).
		return nil, fmt.Errorf("notifier %q: invalid url (want an absolute http or https URL)", cfg.Name)
	}
	p := &Poster{
		name:     cfg.Name,
		endpoint: endpoint,
		target:   u.Scheme + "://" + u.Host,
		secrets:  checks.NewRedactor(),
		timeout:  time.Duration(cfg.Timeout),
		ua:       "vantage/" + o.Version,
		log:      o.Logger.With().Str("notifier", cfg.Name).Logger(),
	}
	if o.Version == "" {
		p.ua = "vantage"
	}
	if p.timeout <= 0 {
		p.timeout = defaultTimeout
	}
	// Strings that must not leak if a receiver or the transport echoes
	// them, as they are or escaped (JSON, URL-encoding): the configured
	// URL, the derived endpoint, the path/query (where tokens live), each
	// token-like path segment and query value on its own, and the
	// http_config credentials.
	for _, s := range []string{cfg.URL, endpoint} {
		p.secrets.Add(s)
		p.secrets.AddURL(s)
	}
	if rq := u.RequestURI(); rq != "/" {
		p.secrets.Add(rq)
	}
	if u.User != nil {
		p.secrets.Add(u.User.String())
	}
	p.secrets.AddHTTPConfig(&cfg.HTTPConfig)
	if o.Client != nil {
		c := *o.Client
		c.CheckRedirect = noRedirect
		p.client = &c
		return p, nil
	}
	hc := cfg.HTTPConfig
	// Validate mutates (bearer_token → authorization); work on copies so
	// the shared config is never written from here.
	if hc.Authorization != nil {
		a := *hc.Authorization
		hc.Authorization = &a
	}
	if err := hc.Validate(); err != nil {
		return nil, fmt.Errorf("notifier %q: invalid http_config: %w", cfg.Name, err)
	}
	hc.FollowRedirects = false
	client, err := config.NewClientFromConfig(hc, "notifier_"+cfg.Name, config.WithUserAgent(p.ua))
	if err != nil {
		return nil, fmt.Errorf("notifier %q: http_config: %w", cfg.Name, err)
	}
	client.CheckRedirect = noRedirect
	p.client = client
	return p, nil
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Target is the receiver's scheme://host, safe for logs.
func (p *Poster) Target() string { return p.target }

// PostJSON makes one attempt, bounded by the notifier's timeout. Any 2xx
// is success whatever the body (Slack answers "ok", proxies answer HTML).
// Otherwise it returns a *SendError: network errors, timeouts,
// 3xx, 429 and 5xx are retryable; other 4xx are Permanent.
func (p *Poster) PostJSON(ctx context.Context, body []byte) error {
	actx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		return &SendError{Permanent: true, Err: fmt.Errorf("POST %s: cannot build request", p.target)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", p.ua)
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return p.transportError(ctx, actx, err)
	}
	defer resp.Body.Close()

	code := resp.StatusCode
	if code >= 200 && code < 300 {
		// Drain a little so the connection can be reused; ignore the rest.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		p.log.Debug().Str("target", p.target).Int("status", code).
			Dur("took", time.Since(start)).Msg("notification delivered")
		return nil
	}
	// Read past the shown part and redact before cutting: cut first, a
	// token straddling the cut would leak its prefix.
	snippet, rerr := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytes+redactMargin))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	se := &SendError{Status: code, Body: cut(p.clean(snippet), errorBodyBytes)}
	if rerr != nil && se.Body == "" {
		se.Body = "(body unreadable: " + p.redact(rerr.Error()) + ")"
	}
	switch {
	case code >= 300 && code < 400:
		// The Location header may carry a token too, so it is not shown.
		se.Body = "redirect not followed (notifications are never re-posted to another URL; configure the final URL)"
		se.Err = fmt.Errorf("POST %s: redirected with %d", p.target, code)
	case code == http.StatusTooManyRequests || code >= 500:
		se.Err = fmt.Errorf("POST %s: %d %s", p.target, code, http.StatusText(code))
	case code >= 400:
		se.Permanent = true
		se.Err = fmt.Errorf("POST %s: %d %s", p.target, code, http.StatusText(code))
	default:
		se.Err = fmt.Errorf("POST %s: unexpected status %d", p.target, code)
	}
	return se
}

// transportError turns a failed round trip into a retryable SendError
// whose text names only scheme://host. *url.Error quotes the full URL, so
// only its cause is kept.
func (p *Poster) transportError(parent, attempt context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var msg string
	switch {
	case parent.Err() != nil:
		msg = fmt.Sprintf("POST %s: %v", p.target, parent.Err())
		err = parent.Err()
	case errors.Is(attempt.Err(), context.DeadlineExceeded):
		msg = fmt.Sprintf("POST %s: no complete answer within %s (timeout)", p.target, p.timeout)
		err = context.DeadlineExceeded
	default:
		msg = fmt.Sprintf("POST %s: %s", p.target, p.redact(err.Error()))
	}
	return &SendError{Err: &redactedError{msg: msg, err: err}}
}

// redactedError carries a message already scrubbed of the URL while still
// unwrapping to the cause (for errors.Is(err, context.DeadlineExceeded)).
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func (p *Poster) redact(s string) string { return p.secrets.Redact(s) }

// clean makes a response snippet safe for one log line: valid UTF-8, no
// control characters, the URL scrubbed if the receiver echoed it.
func (p *Poster) clean(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return p.redact(strings.TrimSpace(s))
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Encode marshals v as JSON without HTML escaping: receivers decode either
// form, but "<url|text>" stays readable in logs and captures.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// FiringOnly returns the firing notifications of batch.
func FiringOnly(batch []Notification) []Notification {
	var out []Notification
	for _, nt := range batch {
		if StatusOf(nt) == "firing" {
			out = append(out, nt)
		}
	}
	return out
}

// StatusOf is "firing" or "resolved"; a notification without one is resolved
// when it has an end time.
func StatusOf(nt Notification) string {
	switch nt.Status {
	case "firing", "resolved":
		return nt.Status
	}
	if !nt.EndsAt.IsZero() || nt.Instance.State == Resolved {
		return "resolved"
	}
	return "firing"
}

// StartOf is when the episode started firing.
func StartOf(nt Notification) time.Time {
	switch {
	case !nt.StartsAt.IsZero():
		return nt.StartsAt.UTC()
	case !nt.Instance.FiredAt.IsZero():
		return nt.Instance.FiredAt.UTC()
	}
	return nt.Instance.ActiveAt.UTC()
}

// EndOf is when a resolved notification's episode ended (zero when it is
// unknown).
func EndOf(nt Notification) time.Time {
	if !nt.EndsAt.IsZero() {
		return nt.EndsAt.UTC()
	}
	return nt.Instance.ResolvedAt.UTC()
}

// LabelsOf returns the instance's labels without empty values: an empty
// label is an absent one in Prometheus, and Alertmanager drops them too.
func LabelsOf(nt Notification) map[string]string {
	out := make(map[string]string, len(nt.Instance.Labels))
	for k, v := range nt.Instance.Labels {
		if v != "" {
			out[k] = v
		}
	}
	return out
}
