// Package notifytest is test support for the notifier tests (the webhook,
// slack and alertmanager packages, and alerting's dispatcher tests): a
// recording HTTP receiver that can be told to misbehave, sample
// notifications, notifier configs and golden-file comparison. Only tests
// import it.
package notifytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/vantage-monitoring/vantage/alerting"
	"github.com/vantage-monitoring/vantage/alerting/webhook"
	"github.com/vantage-monitoring/vantage/checks"
	"github.com/vantage-monitoring/vantage/internal/testenv"
)

// Times of the sample alert episode.
var (
	// FiredAt is when the sample episode started firing.
	FiredAt = time.Date(2026, 3, 14, 21, 40, 0, 0, time.UTC)
	// ResolvedAt is when it resolved, 7 minutes later.
	ResolvedAt = time.Date(2026, 3, 14, 21, 47, 0, 0, time.UTC)
)

// Firing is a sample firing notification whose episode started at start:
// a load-balancer node alert that fired three times in 38 minutes
// (flapping), with an empty label that notifiers must drop.
func Firing(start time.Time) alerting.Notification {
	return alerting.Notification{
		Status: "firing", StartsAt: start,
		GeneratorURL: "http://vantage.example:9115/alerts?key=LoadBalancerNodeDegraded",
		Instance: alerting.Instance{
			Key: "LoadBalancerNodeDegraded|check=shop-home|node=127.0.0.12|path=direct", Rule: "LoadBalancerNodeDegraded",
			Labels: map[string]string{"alertname": "LoadBalancerNodeDegraded", "check": "shop-home", "path": "direct",
				"node": "127.0.0.12", "location": "fra1", "severity": "warning", "empty": ""},
			State: alerting.Firing, Value: 4.2, FiredAt: start,
			Fired: []time.Time{start.Add(-38 * time.Minute), start.Add(-20 * time.Minute), start},
			Annotations: map[string]string{"summary": "shop-home node 127.0.0.12 is 4.2x slower than its peers",
				"fired_count": "3", "first_fired_at": start.Add(-38 * time.Minute).UTC().Format(time.RFC3339), "flapping": "true"},
		},
	}
}

// Resolved returns n resolved at end (zero for an unknown end), with the
// engine's resolution annotation. n's annotations are copied, not changed.
func Resolved(n alerting.Notification, end time.Time) alerting.Notification {
	n.Status, n.EndsAt = "resolved", end
	n.Instance.State, n.Instance.ResolvedAt = alerting.Resolved, end
	ann := map[string]string{}
	for k, v := range n.Instance.Annotations {
		ann[k] = v
	}
	ann["resolution"] = "resolved after 7m; fired 3 times in the last 1h"
	n.Instance.Annotations = ann
	return n
}

// Config is a notifier config named name of type typ posting to url, with
// a 2s timeout and the default http_config.
func Config(name, typ, url string) checks.Notifier {
	return checks.Notifier{Name: name, Type: typ, URL: url,
		Timeout: model.Duration(2 * time.Second), HTTPConfig: config.DefaultHTTPClientConfig}
}

// New builds a notifier with newFn (webhook.New, slack.New, ...), failing
// t if it cannot.
func New[N alerting.Notifier](t testing.TB, newFn func(checks.Notifier, alerting.NotifierOptions) (N, error),
	cfg checks.Notifier, opts alerting.NotifierOptions) N {
	t.Helper()
	n, err := newFn(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Golden compares got, indented as JSON, with testdata/name in the test's
// package directory (testenv.Golden; -update rewrites it).
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, got, "", "  "); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, got)
	}
	b.WriteByte('\n')
	testenv.Golden(t, name, b.Bytes())
}

// CheckSendError fails t unless err is a *alerting.SendError with the
// given HTTP status and permanence (IsPermanent agreeing) and, when body
// is not empty, that response body.
func CheckSendError(t testing.TB, err error, status int, permanent bool, body string) {
	t.Helper()
	var se *alerting.SendError
	if !errors.As(err, &se) {
		t.Fatalf("want *SendError, got %T %v", err, err)
	}
	if se.Status != status || se.Permanent != permanent || alerting.IsPermanent(err) != permanent {
		t.Errorf("status %d permanent %v, want %d %v", se.Status, se.Permanent, status, permanent)
	}
	if body != "" && se.Body != body {
		t.Errorf("body %q, want %q", se.Body, body)
	}
}

// NoLeak fails t if err's text contains any of secrets: a receiver's URL
// carries its token, so errors must not show it.
func NoLeak(t testing.TB, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error leaks the URL: %v", err)
		}
	}
}

// Classification is one way a receiver answers and how a notifier's single
// attempt must come out of it: success when OK, else a *SendError with
// Status and Permanent (and Body, when not empty).
type Classification struct {
	Name      string
	Handler   http.HandlerFunc
	OK        bool
	Status    int
	Permanent bool
	Body      string
}

// Classify runs each case as a subtest: send makes one Send to a receiver
// at base answering with the case's handler. It checks the outcome, that
// the error leaks none of secrets, and that exactly one request was made.
func Classify(t *testing.T, cases []Classification, send func(t *testing.T, base string) error, secrets ...string) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			rc := NewReceiver(t, tc.Handler)
			err := send(t, rc.URL)
			if tc.OK {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			CheckSendError(t, err, tc.Status, tc.Permanent, tc.Body)
			NoLeak(t, err, secrets...)
			if got := len(rc.Requests()); got != 1 {
				t.Errorf("%d requests, want exactly one attempt", got)
			}
		})
	}
}

// Stall is a handler that answers only once the client has given up, or
// after d: a receiver slower than the notifier's timeout.
func Stall(d time.Duration) http.HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(d):
		}
	}
}

// Request is one request a Receiver got.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	// Answer is how the receiver answered: "ok" when its handler did, else
	// the scripted misbehaviour or the status set with Fail ("503").
	Answer string
}

// Receiver is a real HTTP receiver (an httptest.Server) that records every
// request, in order, and answers it by its script first, then with the
// status set by Fail, else with its handler.
type Receiver struct {
	*httptest.Server
	handler http.HandlerFunc
	fail    atomic.Int32
	mu      sync.Mutex
	script  []string
	reqs    []Request
}

// NewReceiver starts a Receiver, closed when the test ends. h answers the
// requests the receiver accepts; nil answers 200 with an empty body.
func NewReceiver(t testing.TB, h http.HandlerFunc) *Receiver {
	t.Helper()
	rc := &Receiver{handler: h}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	answer := "ok"
	if len(rc.script) > 0 {
		answer, rc.script = rc.script[0], rc.script[1:]
	} else if c := rc.fail.Load(); c != 0 {
		answer = strconv.Itoa(int(c))
	}
	rc.reqs = append(rc.reqs, Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Answer: answer})
	rc.mu.Unlock()
	switch answer {
	case "ok":
		if rc.handler != nil {
			rc.handler(w, r)
		}
	case "slow":
		Stall(3*time.Second)(w, r)
	case "redirect": // to a port nothing listens on
		http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusTemporaryRedirect)
	default:
		code, _ := strconv.Atoi(answer)
		http.Error(w, "<html><body>"+http.StatusText(code)+"</body></html>", code)
	}
}

// Script makes the next requests misbehave, one entry each: "slow" answers
// only after the client gave up (3s at most), "redirect" redirects (307)
// to a closed port, and a status code ("500") answers that status with an
// HTML error page. Requests after the script are answered as usual.
func (rc *Receiver) Script(answers ...string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.script = append(rc.script, answers...)
}

// Fail makes the receiver answer every request with code and an HTML error
// page, until Fail(0).
func (rc *Receiver) Fail(code int) { rc.fail.Store(int32(code)) }

// Requests returns the requests received so far, in order.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.reqs...)
}

// Bodies returns the bodies of the requests received so far, in order.
func (rc *Receiver) Bodies() [][]byte {
	var out [][]byte
	for _, r := range rc.Requests() {
		out = append(out, r.Body)
	}
	return out
}

// Answers returns how each request so far was answered, in order.
func (rc *Receiver) Answers() []string {
	var out []string
	for _, r := range rc.Requests() {
		out = append(out, r.Answer)
	}
	return out
}

// Messages decodes the bodies of the accepted ("ok") requests as webhook
// messages, in order, failing t on a body that is not one.
func (rc *Receiver) Messages(t testing.TB) []webhook.Message {
	t.Helper()
	var out []webhook.Message
	for _, r := range rc.Requests() {
		if r.Answer != "ok" {
			continue
		}
		var m webhook.Message
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Errorf("receiver: %v", err)
		}
		out = append(out, m)
	}
	return out
}
