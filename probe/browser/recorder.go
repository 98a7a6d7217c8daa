package browser

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"

	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// Request results (the `result` label of vantage_browser_requests_total).
const (
	ResultOK        = "ok"
	ResultHTTPError = "http_error"
	ResultFailed    = "failed"
	ResultBlocked   = "blocked"
)

// maxRequests bounds the request list of one run; a hostile page cannot
// grow it without limit.
const maxRequests = 2000

type reqState struct {
	req   probe.Request
	t0    float64 // CDP monotonic seconds
	extra int     // status from responseReceivedExtraInfo
}

// recorder turns the tab's Network events into the run's request list. Its
// onEvent runs on chromedp's event loop, so it only records.
type recorder struct {
	pl     *runPlan
	redact func(string) string

	mu       sync.Mutex
	live     map[network.RequestID]*reqState
	extra    map[network.RequestID]int // extra-info status seen before the request
	done     []probe.Request
	dropped  int
	onDialog func()
}

func newRecorder(pl *runPlan, redact func(string) string) *recorder {
	return &recorder{pl: pl, redact: redact, live: map[network.RequestID]*reqState{}, extra: map[network.RequestID]int{}}
}

func (r *recorder) setDialogHandler(f func()) {
	r.mu.Lock()
	r.onDialog = f
	r.mu.Unlock()
}

func (r *recorder) onEvent(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		r.mu.Lock()
		defer r.mu.Unlock()
		if st := r.live[ev.RequestID]; st != nil && ev.RedirectResponse != nil {
			st.req.Status = int(ev.RedirectResponse.Status)
			r.finishLocked(ev.RequestID, st, float64(ev.Timestamp), "")
		}
		if ev.Request == nil || ignoredURL(ev.Request.URL) {
			return
		}
		if len(r.done)+len(r.live) >= maxRequests {
			r.dropped++
			return
		}
		r.live[ev.RequestID] = &reqState{
			t0: float64(ev.Timestamp),
			req: probe.Request{
				URL:    r.redact(redactURL(ev.Request.URL)),
				Domain: hostOf(ev.Request.URL),
				Method: ev.Request.Method,
				Start:  wallTime(float64(ev.WallTime)),
				Type:   strings.ToLower(string(ev.Type)),
			},
		}
	case *network.EventResponseReceived:
		r.mu.Lock()
		if st := r.live[ev.RequestID]; st != nil && ev.Response != nil {
			st.req.Status = int(ev.Response.Status)
		}
		r.mu.Unlock()
	case *network.EventResponseReceivedExtraInfo:
		// Chromium's ORB hides error bodies of sub-resources: the status
		// then only shows up here.
		r.mu.Lock()
		if st := r.live[ev.RequestID]; st != nil {
			st.extra = int(ev.StatusCode)
		} else if len(r.extra) < maxRequests {
			r.extra[ev.RequestID] = int(ev.StatusCode)
		}
		r.mu.Unlock()
	case *network.EventLoadingFinished:
		r.mu.Lock()
		if st := r.live[ev.RequestID]; st != nil {
			r.finishLocked(ev.RequestID, st, float64(ev.Timestamp), "")
		}
		r.mu.Unlock()
	case *network.EventLoadingFailed:
		r.mu.Lock()
		if st := r.live[ev.RequestID]; st != nil {
			why := ev.ErrorText
			if ev.BlockedReason != "" {
				why += " (blocked: " + string(ev.BlockedReason) + ")"
			}
			if ev.Canceled {
				why += " (canceled)"
			}
			if why == "" {
				why = "failed"
			}
			r.finishLocked(ev.RequestID, st, float64(ev.Timestamp), why)
		}
		r.mu.Unlock()
	case *page.EventJavascriptDialogOpening:
		r.mu.Lock()
		f := r.onDialog
		r.mu.Unlock()
		if f != nil {
			go f() // commands must not run on the event loop
		}
	}
}

// finishLocked classifies a request that ended at monotonic time end.
func (r *recorder) finishLocked(id network.RequestID, st *reqState, end float64, failure string) {
	delete(r.live, id)
	if st.extra == 0 {
		st.extra = r.extra[id]
	}
	delete(r.extra, id)
	if st.req.Status == 0 && st.extra != 0 {
		st.req.Status = st.extra
	}
	if end > st.t0 {
		st.req.Duration = time.Duration((end - st.t0) * float64(time.Second))
	}
	st.req.Result = classify(r.pl, st.req.Domain, st.req.Status, failure)
	st.req.Failure = failure
	r.done = append(r.done, st.req)
}

func classify(pl *runPlan, domain string, status int, failure string) string {
	switch {
	case pl.blocked(domain):
		return ResultBlocked
	case status >= 400:
		return ResultHTTPError
	case failure != "":
		return ResultFailed
	default:
		return ResultOK
	}
}

// waitIdle waits until no request is in flight, at most max or ctx.
func (r *recorder) waitIdle(ctx context.Context, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		r.mu.Lock()
		n := len(r.live)
		r.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finish ends the recording. Requests still in flight when a run failed
// or timed out failed too (no answer before the run ended). After a
// successful journey, one whose response had begun counts by its status,
// and one without any answer yet is left out: the customer moved on, and
// nothing says it would have failed. Proxy errors explain tunnel failures.
func (r *recorder) finish(now time.Time, recs []connRecord, journeyOK bool) []probe.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, st := range r.live {
		delete(r.live, id)
		if journeyOK {
			if st.req.Status == 0 && st.extra == 0 {
				continue
			}
			if st.req.Status == 0 {
				st.req.Status = st.extra
			}
			if !st.req.Start.IsZero() {
				st.req.Duration = now.Sub(st.req.Start)
			}
			st.req.Result = classify(r.pl, st.req.Domain, st.req.Status, "")
			r.done = append(r.done, st.req)
			continue
		}
		st.req.Failure = "no response before the run ended (timeout)"
		if !st.req.Start.IsZero() {
			st.req.Duration = now.Sub(st.req.Start)
		}
		st.req.Result = classify(r.pl, st.req.Domain, st.req.Status, st.req.Failure)
		r.done = append(r.done, st.req)
	}
	lastErr := map[string]string{}
	for _, rc := range recs {
		if rc.Err != "" {
			lastErr[rc.Host] = rc.describe()
		}
	}
	out := make([]probe.Request, len(r.done))
	copy(out, r.done)
	for i := range out {
		q := &out[i]
		switch {
		case q.Result == ResultHTTPError:
			// What the domain answered; Chromium's own words (ORB blocking
			// the error body, say) follow.
			f := fmt.Sprintf("HTTP %d", q.Status)
			if q.Failure != "" {
				f += " (" + q.Failure + ")"
			}
			q.Failure = f
		case q.Result == ResultFailed && proxiedFailure(q.Failure):
			// Chromium saw only the proxy fail: say what the domain did.
			if e := lastErr[q.Domain]; e != "" {
				q.Failure = r.redact(e)
			}
		}
	}
	// Keep start order (events finish out of order).
	sortRequests(out)
	return out
}

// proxiedFailure reports whether Chromium's error text is one the proxy
// causes when the upstream fails: a refused tunnel, or a connection the
// proxy reset or closed after the upstream's failure.
func proxiedFailure(failure string) bool {
	for _, code := range []string{"ERR_TUNNEL_CONNECTION_FAILED", "ERR_EMPTY_RESPONSE",
		"ERR_CONNECTION_RESET", "ERR_CONNECTION_CLOSED", "ERR_SSL_PROTOCOL_ERROR"} {
		if strings.Contains(failure, code) {
			return true
		}
	}
	return false
}

func sortRequests(rs []probe.Request) {
	// insertion sort: lists are short and mostly ordered
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Start.Before(rs[j-1].Start); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func wallTime(sec float64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	s, frac := math.Modf(sec)
	return time.Unix(int64(s), int64(frac*1e9))
}

// ignoredURL: favicon noise and URLs that never touch the network.
func ignoredURL(raw string) bool {
	if strings.HasPrefix(raw, "data:") || strings.HasPrefix(raw, "blob:") || strings.HasPrefix(raw, "about:") {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	return u.Path == "/favicon.ico"
}

// redactURL drops userinfo, query and fragment: they may hold secrets.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = ""
		u.ForceQuery = false
		return u.Scheme + "://" + u.Host + u.EscapedPath() + "?…"
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

func hostOf(raw string) string { return strings.ToLower(probeutil.URLHost(raw)) }
