package browser

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/probe/probeutil"
)

// run is one execution of a browser check against one target.
type run struct {
	p       *Prober
	t       *probe.Target
	pl      *runPlan
	inst    *instance
	tlsBase *tls.Config

	rec   *recorder
	proxy *forwardProxy
	tgt   *chromedp.Target
}

// initScript runs in every document before the page's own scripts: it
// records Largest Contentful Paint and keeps window.open from spawning
// popups.
const initScript = `(() => {
  window.__vantageLCP = 0;
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) { window.__vantageLCP = Math.max(window.__vantageLCP, e.renderTime || e.startTime); }
    }).observe({type: 'largest-contentful-paint', buffered: true});
  } catch (e) {}
  window.open = function () { return null; };
})();`

// navTimingScript reads the Navigation Timing entry of the current
// document, in milliseconds since navigation start.
const navTimingScript = `new Promise((resolve) => {
  const read = () => {
    const n = performance.getEntriesByType('navigation')[0];
    if (!n) { return null; }
    const ttfb = n.requestStart > 0 ? n.responseStart - n.requestStart : n.responseStart - n.startTime;
    return {ttfb: ttfb, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd || n.loadEventStart, lcp: window.__vantageLCP || 0};
  };
  if (window.__vantageLCP) { resolve(read()); return; }
  // LCP is reported some frames after the paint it measures, often after
  // the load event: wait for it, but not for long (a page with nothing
  // contentful never reports one).
  let done = false;
  const finish = () => { if (!done) { done = true; resolve(read()); } };
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) { window.__vantageLCP = Math.max(window.__vantageLCP || 0, e.renderTime || e.startTime); }
      finish();
    }).observe({type: 'largest-contentful-paint', buffered: true});
  } catch (e) {}
  setTimeout(finish, 300);
})`

type navJS struct {
	TTFB float64 `json:"ttfb"`
	DCL  float64 `json:"dcl"`
	Load float64 `json:"load"`
	LCP  float64 `json:"lcp"`
}

// stepFailure is an assertion that did not hold (result failure).
type stepFailure struct{ msg string }

func (e *stepFailure) Error() string { return e.msg }

// artifactReserve is kept back from the steps so a failed run still has
// time for its screenshot.
func artifactReserve(total time.Duration) time.Duration {
	return min(2*time.Second, total/5)
}

// exec runs the journey and fills out. It owns the semaphore slot taken by
// Probe and releases it once the browser context is gone.
func (r *run) exec(ctx context.Context, out *probe.Outcome, mono time.Time, release func()) {
	t, pl := r.t, r.pl
	finish := func(res probe.Result, reason string) {
		out.Result, out.Reason = res, t.Scrub(reason)
		out.Duration = time.Since(mono)
	}
	// ctx allows PrepareTimeout on top of the check's timeout (see
	// probe.Preparer): opening the tab has its own bound, and the journey's
	// timeout starts once the tab is open.
	outer, ok := ctx.Deadline()
	if !ok {
		outer = time.Now().Add(time.Minute + tabOpenTimeout)
	}
	openDeadline := earliest(time.Now().Add(tabOpenTimeout), outer)
	openBudget := time.Until(openDeadline).Round(time.Millisecond)
	wantArtifacts := r.p.opts.StorageDir != "" && pl.screenshot != "never"

	var err error
	r.proxy, err = newForwardProxy(probeutil.Dialer{Path: t.Path, Node: t.Node, PinHost: pl.pinHost}, r.tlsBase, pl.blocked)
	if err != nil {
		release()
		finish(probe.Error, err.Error())
		return
	}
	r.rec = newRecorder(pl, t.Scrub)
	proxyURL := "http://" + r.proxy.Addr()
	rctx, rcancel := chromedp.NewContext(r.inst.ctx,
		chromedp.WithNewBrowserContext(func(p *target.CreateBrowserContextParams) {
			p.ProxyServer = proxyURL
			// Route loopback names through the proxy too: the path and
			// node decide where traffic goes, never Chromium.
			p.ProxyBypassList = "<-loopback>"
		}),
		chromedp.WithListener(r.rec.onEvent))
	tabCtx, tabCancel := context.WithDeadline(rctx, outer)
	// The tab's context descends from the browser's, not from ctx: tie
	// them, so a run ends when its caller gives up (the daemon stopping, a
	// reload removing the target, Ctrl-C in `vantage once`) rather than at
	// its deadline, up to the check's whole timeout later.
	untie := context.AfterFunc(ctx, tabCancel)
	defer untie()
	// Closing the tab and disposing its context can take a moment, more
	// so with a sick browser: do it in the background, holding the slot.
	defer func() {
		tabCancel()
		go func() {
			rcancel()
			r.proxy.Close()
			release()
		}()
	}()

	if err := r.setup(tabCtx, openDeadline); err != nil {
		if r.inst.lost() {
			r.p.discard(r.inst, err.Error())
			finish(probe.Error, "browser crashed while opening a page: "+err.Error())
			return
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			// The browser's trouble, not the target's: an error, not a
			// timeout of the journey.
			finish(probe.Error, fmt.Sprintf("browser did not open a page within %s: %v", openBudget, err))
			return
		}
		finish(probe.Error, "browser: "+err.Error())
		return
	}

	timeout := time.Duration(t.Check.Timeout)
	if timeout <= 0 {
		timeout = time.Minute
	}
	deadline := earliest(time.Now().Add(timeout), outer)
	stepsDeadline := deadline
	if wantArtifacts {
		stepsDeadline = deadline.Add(-artifactReserve(time.Until(deadline)))
	}
	runCtx, runCancel := context.WithDeadline(tabCtx, deadline)
	defer runCancel()

	out.Result = probe.Success
	for i := range pl.steps {
		sr := r.step(runCtx, &pl.steps[i], stepsDeadline)
		out.Steps = append(out.Steps, sr)
		if sr.Result != probe.Success {
			out.Result = sr.Result
			out.Reason = t.Scrub(fmt.Sprintf("step %q: %s", sr.Name, sr.Reason))
			if r.inst.lost() {
				r.p.discard(r.inst, "connection lost during a run")
				out.Result = probe.Error
				out.Reason = t.Scrub(fmt.Sprintf("step %q: browser crashed: %s", sr.Name, sr.Reason))
			}
			break
		}
		r.closePopups(runCtx)
	}

	var shot []byte
	if wantArtifacts && !r.inst.lost() && (pl.screenshot == "always" || out.Result != probe.Success) {
		// A page still loading can hold the capture: bound it.
		sctx, cancel := context.WithTimeout(runCtx, 2*time.Second)
		shot, _ = chromedp.Run(sctx, chromedp.CaptureScreenshot())
		cancel()
	}
	journey := time.Since(mono)
	if out.Result == probe.Success {
		// The journey is done but sub-resources of its last page may still
		// be loading: give them a moment so they are not reported failed.
		r.rec.waitIdle(runCtx, 2*time.Second)
	}
	out.Requests = r.rec.finish(time.Now(), r.proxy.Records(), out.Result == probe.Success)
	out.Detail = connSummary(r.proxy.Records())
	out.Duration = journey
	if wantArtifacts && (pl.screenshot == "always" || out.Result != probe.Success) {
		paths, err := r.p.writeArtifacts(t, out, shot)
		if err != nil {
			r.p.log.Warn().Err(err).Str("target", t.Key).Msg("writing browser artifacts")
		}
		out.Artifacts = paths
	}
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// tabOpenTimeout bounds opening a run's tab (a fresh incognito context in
// the shared Chromium) apart from the check's timeout, which covers only
// the journey.
const tabOpenTimeout = 30 * time.Second

// setup opens the tab in a fresh incognito context and prepares it, by
// openDeadline.
func (r *run) setup(tabCtx context.Context, openDeadline time.Time) error {
	ctx, cancel := context.WithDeadline(tabCtx, openDeadline)
	defer cancel()
	// The first Do on a context binds the tab's event loop to it, and the
	// tab must outlive the steps (screenshot); so start it with tabCtx and
	// bound the wait separately.
	errc := make(chan error, 1)
	go func() { errc <- chromedp.Do(tabCtx) }()
	select {
	case err := <-errc:
		if err != nil {
			return err
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	c := chromedp.FromContext(tabCtx)
	r.tgt = c.Target
	r.rec.setDialogHandler(func() {
		// A JavaScript dialog blocks the page until answered: dismiss it.
		_, _ = cdp.Call(tabCtx, r.tgt, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
	})
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorDeny, BrowserContextID: c.BrowserContextID,
	}); err != nil {
		return fmt.Errorf("deny downloads: %w", err)
	}
	if _, err := cdp.Call(ctx, r.tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: initScript}); err != nil {
		return fmt.Errorf("init script: %w", err)
	}
	return nil
}

// closePopups closes every other page of this run's browser context.
func (r *run) closePopups(ctx context.Context) {
	c := chromedp.FromContext(ctx)
	if c == nil || r.tgt == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := chromedp.CallBrowser(cctx, target.GetTargets, target.GetTargetsParams{})
	if err != nil {
		return
	}
	for _, info := range res.TargetInfos {
		if info.Type == "page" && info.BrowserContextID == c.BrowserContextID && info.TargetID != r.tgt.TargetID {
			_, _ = chromedp.CallBrowser(cctx, target.CloseTarget, target.CloseTargetParams{TargetID: info.TargetID})
		}
	}
}

// step runs one step within its timeout (or what is left of the run).
func (r *run) step(runCtx context.Context, sp *stepPlan, stepsDeadline time.Time) probe.StepResult {
	sr := probe.StepResult{Name: sp.name, Start: r.p.now()}
	dl := stepsDeadline
	own := false
	if sp.timeout > 0 && time.Now().Add(sp.timeout).Before(dl) {
		dl, own = time.Now().Add(sp.timeout), true
	}
	sctx, cancel := context.WithDeadline(runCtx, dl)
	defer cancel()
	budget := time.Until(dl).Round(time.Millisecond)
	start := time.Now()
	err := r.do(sctx, sp, &sr)
	sr.Duration = time.Since(start)
	switch {
	case err == nil:
		sr.Result = probe.Success
		if sp.act == actNavigate {
			sr.Navigation = r.navTiming(runCtx)
		}
	case errors.As(err, new(*stepFailure)):
		sr.Result, sr.Reason = probe.Failure, err.Error()
	case errors.As(err, new(*assertFailure)):
		// The page was there and said something else for as long as the
		// step could wait: the assertion failed, whichever deadline ended it.
		sr.Result = probe.Failure
		sr.Reason = fmt.Sprintf("%s (waited %s)", err.Error(), budget)
	case sctx.Err() != nil && runCtx.Err() == nil || errors.Is(err, context.DeadlineExceeded):
		sr.Reason = timeoutReason(sp, budget)
		if td := new(*timeoutDetail); errors.As(err, td) {
			sr.Reason = fmt.Sprintf("%s (waited %s)", (*td).msg, budget)
		}
		sr.Result = probe.Timeout
		if own {
			// The step's own timeout: the page did not do what the
			// journey expects in time, which is a failed assertion.
			sr.Result = probe.Failure
		}
	default:
		sr.Result, sr.Reason = probe.Error, r.errorReason(sp, err)
	}
	return sr
}

func (r *run) errorReason(sp *stepPlan, err error) string {
	var le *chromedp.LoadError
	if errors.As(err, &le) {
		// Chromium only saw the proxy fail: what the domain did is the
		// proxy's record of it.
		if why := r.proxyError(sp.url); why != "" && proxiedFailure(le.ErrorText) {
			return fmt.Sprintf("navigate to %s: %s", redactURL(sp.url), why)
		}
		return fmt.Sprintf("navigate to %s: %s", redactURL(sp.url), le.ErrorText)
	}
	if sp.selector != "" {
		return fmt.Sprintf("%s %q: %v", sp.act, sp.selector, err)
	}
	return err.Error()
}

// proxyError is the proxy's last connection error for rawURL's host.
func (r *run) proxyError(rawURL string) string {
	host := hostOf(rawURL)
	var why string
	for _, rec := range r.proxy.Records() {
		if rec.Host == host && rec.Err != "" {
			why = rec.describe()
		}
	}
	return why
}

func timeoutReason(sp *stepPlan, budget time.Duration) string {
	switch sp.act {
	case actNavigate:
		return fmt.Sprintf("page %s did not finish loading within %s", redactURL(sp.url), budget)
	case actClick, actFill:
		return fmt.Sprintf("selector %q not found or not visible within %s", sp.selector, budget)
	case actWaitVisible:
		return fmt.Sprintf("selector %q not visible within %s", sp.selector, budget)
	case actAssertText:
		return fmt.Sprintf("selector %q: expected text not seen within %s", sp.selector, budget)
	case actAssertURL:
		return fmt.Sprintf("URL did not match within %s", budget)
	default:
		return fmt.Sprintf("%s did not finish within %s", sp.act, budget)
	}
}

// do performs one action.
func (r *run) do(ctx context.Context, sp *stepPlan, sr *probe.StepResult) error {
	switch sp.act {
	case actNavigate:
		sr.URL = redactURL(sp.url)
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(sp.url))
		if err != nil {
			return err
		}
		if resp != nil {
			sr.StatusCode = int(resp.Status)
			if resp.Status >= 400 {
				return &stepFailure{fmt.Sprintf("%s answered HTTP %d", redactURL(sp.url), resp.Status)}
			}
		}
		return nil
	case actClick:
		return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sp.selector), chromedp.NodeVisible))
	case actFill:
		clear := `(() => { const e = document.querySelector(` + jsString(sp.selector) + `); if (e && 'value' in e) { e.value = ''; } })()`
		return chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS(sp.selector)),
			chromedp.Evaluate[chromedp.Void](clear),
			chromedp.SendKeys(chromedp.CSS(sp.selector), sp.value, chromedp.NodeVisible))
	case actPress:
		return chromedp.Do(ctx, chromedp.KeyEvent(sp.key))
	case actWaitVisible:
		return chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sp.selector)))
	case actAssertText:
		return r.assertText(ctx, sp)
	case actAssertURL:
		return r.assertURL(ctx, sp)
	case actSleep:
		tm := time.NewTimer(sp.sleep)
		defer tm.Stop()
		select {
		case <-tm.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("unknown action %q", sp.act)
}

const pollInterval = 50 * time.Millisecond

// poll calls f until it reports done, an error that is not transient, or
// ctx ends; the last detail explains a timeout.
func poll(ctx context.Context, f func(ctx context.Context) (done bool, err error)) error {
	for {
		done, err := f(ctx)
		if done {
			return err
		}
		tm := time.NewTimer(pollInterval)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (r *run) assertText(ctx context.Context, sp *stepPlan) error {
	expr := `(() => { const e = document.querySelector(` + jsString(sp.selector) + `); return e ? e.textContent : null; })()`
	var last *string
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		// Evaluate fails while a navigation swaps documents: retry.
		v, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		if err != nil {
			return false, nil
		}
		last = v
		if v == nil {
			return false, nil
		}
		text := strings.TrimSpace(*v)
		if sp.equals != "" && text != sp.equals {
			return false, nil
		}
		if sp.contains != "" && !strings.Contains(text, sp.contains) {
			return false, nil
		}
		return true, nil
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		want := fmt.Sprintf("contain %q", sp.contains)
		if sp.equals != "" {
			want = fmt.Sprintf("equal %q", sp.equals)
		}
		if last == nil {
			return &timeoutDetail{err: err, msg: fmt.Sprintf("selector %q not found (want its text to %s)", sp.selector, want)}
		}
		return &assertFailure{fmt.Sprintf("text of %q is %q, want it to %s", sp.selector, truncate(strings.TrimSpace(*last), 200), want)}
	}
	return err
}

func (r *run) assertURL(ctx context.Context, sp *stepPlan) error {
	var last string
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.location.href`))
		if err != nil {
			return false, nil
		}
		last = v
		return urlMatches(v, sp.contains, sp.re), nil
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		want := fmt.Sprintf("contain %q", sp.contains)
		if sp.re != nil {
			want = fmt.Sprintf("match %q", sp.re.String())
		}
		if last == "" {
			return &timeoutDetail{err: err, msg: fmt.Sprintf("URL could not be read (want it to %s)", want)}
		}
		return &assertFailure{fmt.Sprintf("URL is %s, want it to %s", redactURL(last), want)}
	}
	return err
}

func urlMatches(u, contains string, re *regexp.Regexp) bool {
	if contains != "" && !strings.Contains(u, contains) {
		return false
	}
	if re != nil && !re.MatchString(u) {
		return false
	}
	return true
}

// assertFailure is an assertion the page answered but never satisfied
// (result failure, whichever deadline ended the wait).
type assertFailure struct{ msg string }

func (e *assertFailure) Error() string { return e.msg }

// timeoutDetail is a timeout with a better explanation than the generic
// one; it unwraps to the context error.
type timeoutDetail struct {
	err error
	msg string
}

func (e *timeoutDetail) Error() string { return e.msg }
func (e *timeoutDetail) Unwrap() error { return e.err }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// navTiming reads the Navigation Timing figures of the current document.
func (r *run) navTiming(runCtx context.Context) *probe.NavTiming {
	ctx, cancel := context.WithTimeout(runCtx, 500*time.Millisecond)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[*navJS](navTimingScript, chromedp.EvalAwaitPromise))
	if err != nil || v == nil {
		return nil
	}
	ms := func(f float64) time.Duration {
		if f <= 0 {
			return 0
		}
		return time.Duration(f * float64(time.Millisecond))
	}
	return &probe.NavTiming{TTFB: ms(v.TTFB), DOMContentLoaded: ms(v.DCL), Load: ms(v.Load), LCP: ms(v.LCP)}
}

// connSummary describes the proxy's upstream connections per host for
// `vantage once`: where each host went and what connecting cost.
func connSummary(recs []connRecord) string {
	if len(recs) == 0 {
		return ""
	}
	type agg struct {
		remote       string
		n, failed    int
		dns, connect time.Duration
		tls          time.Duration
		err          string
	}
	var order []string
	by := map[string]*agg{}
	for _, rc := range recs {
		a := by[rc.Host]
		if a == nil {
			a = &agg{}
			by[rc.Host] = a
			order = append(order, rc.Host)
		}
		a.n++
		if rc.Remote != "" {
			a.remote = rc.Remote
		}
		if rc.Err != "" {
			a.failed++
			a.err = rc.Err
		}
		a.dns = max(a.dns, rc.DNS)
		a.connect = max(a.connect, rc.Connect)
		a.tls = max(a.tls, rc.TLS)
	}
	var b strings.Builder
	b.WriteString("connections:")
	for _, h := range order {
		a := by[h]
		fmt.Fprintf(&b, "\n  %s -> %s: %d conn", h, orDash(a.remote), a.n)
		if a.dns > 0 {
			fmt.Fprintf(&b, ", dns %s", a.dns.Round(time.Microsecond))
		}
		fmt.Fprintf(&b, ", connect %s", a.connect.Round(time.Microsecond))
		if a.tls > 0 {
			fmt.Fprintf(&b, ", tls verify %s", a.tls.Round(time.Microsecond))
		}
		if a.failed > 0 {
			fmt.Fprintf(&b, ", %d failed: %s", a.failed, a.err)
		}
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
