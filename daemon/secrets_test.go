package daemon_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/vantage-monitoring/vantage/daemon"
	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
)

const testSecret = "Sup3rSecretValue0x7f3a"

func secretEnv(name string) (string, bool) {
	if name == "VANTAGE_TEST_SECRET" {
		return testSecret, true
	}
	return "", false
}

// secretChecks are failing checks that carry the secret in a header, the
// body, the URL query and an expectation, against a node that answers 200
// without the expected text (failure), one that refuses (error) and one
// that stalls (timeout).
func secretChecks(shop *demo.Shop) string {
	var b strings.Builder
	for _, n := range []struct{ name, ip string }{{"lb1", "127.0.0.11"}, {"lb2", "127.0.0.12"}, {"lb3", "127.0.0.13"}} {
		fmt.Fprintf(&b, `  - name: secret-%[1]s
    type: http
    url: %[2]s
    nodes: {addresses: [{name: %[1]s, address: %[3]s}]}
    http:
      method: GET
      headers: {Authorization: "Bearer ${VANTAGE_TEST_SECRET}", X-Token: "${VANTAGE_TEST_SECRET}"}
      body: '{"password":"${VANTAGE_TEST_SECRET}"}'
    expect:
      status: [200]
      body_contains: ["${VANTAGE_TEST_SECRET}"]
`, n.name, shop.URL(demo.WWWHost, "/?token=${VANTAGE_TEST_SECRET}&x=1"), n.ip)
	}
	b.WriteString(`  - name: secret-journey
    type: http
    nodes: {addresses: [{name: lb1, address: 127.0.0.11}]}
    steps:
      - name: login
        url: ` + shop.URL(demo.APIHost, "/v1/login") + `
        method: POST
        headers: {Content-Type: application/json}
        body: '{"user":"synthetic","password":"${VANTAGE_TEST_SECRET}"}'
        expect: {status: [200]}
`)
	return b.String()
}

// TestSecretsNeverLeak: a secret from ${VAR} used in failing checks appears
// neither in /metrics, nor in logs at debug level, nor in reload errors,
// nor in the stored runs (the SQLite files as bytes, /api/v1/runs/{id})
// and the timeline, though the runs and the rejected reload are there.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	setFault(t, shop, "lb2:refuse")
	setFault(t, shop, "lb3:stall")
	var logs syncBuffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	text := shopConfig(shop, time.Second, 800*time.Millisecond, secretChecks(shop))
	cfgFile := writeConfig(t, text)
	dir := t.TempDir()
	r := startDaemon(t, daemon.Options{ConfigFile: cfgFile, Getenv: secretEnv, Logger: log, StoragePath: dir})

	results := map[string]string{"secret-lb1": "failure", "secret-lb2": "error", "secret-lb3": "timeout", "secret-journey": "failure"}
	var e exposition
	testenv.Eventually(t, 20*time.Second, "", func() error {
		e = r.scrape(t)
		for c, res := range results {
			for _, path := range shopPaths {
				if v, _ := e.value(t, "vantage_check_runs_total", lbl("check", c, "path", path, "result", res)); v < 1 {
					return fmt.Errorf("%s/%s: no %s run yet", c, path, res)
				}
			}
		}
		return nil
	})

	// The runs' reasons (what `once` and the status page show) are where a
	// secret would surface first: the URL is in every net/http error.
	var reasons strings.Builder
	http := kinds.Probers(log, nil)["http"]
	for _, tg := range r.d.Scheduler().Targets() {
		out := probe.RunOnce(t.Context(), http, tg)
		if out.Result == probe.Success || out.Reason == "" {
			t.Errorf("%s: %s with reason %q, want a failed run with a reason", tg.Key, out.Result, out.Reason)
		}
		fmt.Fprintf(&reasons, "%s: %s: %s\n", tg.Key, out.Result, out.Reason)
		for _, st := range out.Steps {
			fmt.Fprintf(&reasons, "  step %s %s: %s\n", st.Name, st.URL, st.Reason)
		}
	}
	t.Logf("reasons:\n%s", reasons.String())

	// A reload whose error quotes the secret (an invalid duration).
	bad := strings.Replace(text, "  interval: 1s", "  interval: ${VANTAGE_TEST_SECRET}", 1)
	writeFile(t, cfgFile, bad)
	code, body := r.do(t, "POST", "/-/reload", nil)
	if code != 500 {
		t.Errorf("reload with an invalid interval: %d %s", code, body)
	}
	if !strings.Contains(body, "invalid duration") {
		t.Errorf("reload error does not explain the problem:\n%s", body)
	}

	seen := map[string]string{"/metrics": e.text, "logs": logs.String(), "reload response": body, "run reasons": reasons.String()}
	// The stored runs, each through the API, and the timeline, which
	// records the rejected reload with its error.
	var timeline string
	testenv.Eventually(t, 20*time.Second, "the rejected reload in the timeline", func() error {
		var code int
		code, timeline = r.do(t, "GET", "/api/v1/timeline?since=1h", nil)
		if code != 200 || !strings.Contains(timeline, "config_reload_failed") {
			return fmt.Errorf("%d:\n%s", code, timeline)
		}
		return nil
	})
	seen["/api/v1/timeline"] = timeline
	_, seen["/api/v1/timeline markdown"] = r.do(t, "GET", "/api/v1/timeline?since=1h&format=markdown", nil)
	var runs strings.Builder
	for id := 1; ; id++ {
		code, body := r.do(t, "GET", fmt.Sprintf("/api/v1/runs/%d", id), nil)
		if code == 404 {
			break
		}
		if code != 200 {
			t.Fatalf("/api/v1/runs/%d: %d %s", id, code, body)
		}
		runs.WriteString(body)
		seen[fmt.Sprintf("/api/v1/runs/%d", id)] = body
	}
	// Every check's failed runs are stored, so a leak would show.
	for c := range results {
		if !strings.Contains(runs.String(), `"check": "`+c+`"`) {
			t.Errorf("no stored run of %s:\n%s", c, runs.String())
		}
	}
	readDBFiles(t, dir, seen)
	for where, s := range seen {
		for _, form := range secretForms(testSecret) {
			if strings.Contains(s, form) {
				t.Errorf("the secret (as %s) leaked into %s:\n%s", form, where, s)
			}
		}
	}
	if !strings.Contains(logs.String(), "config reload rejected") {
		t.Errorf("the rejected reload was not logged:\n%s", logs.String())
	}
}

// TestWebConfigBasicAuth: --web.config.file protects every endpoint.
func TestWebConfigBasicAuth(t *testing.T) {
	t.Parallel()
	// MinCost keeps the test fast. (An unknown user is not tried: the
	// toolkit then compares with a fixed cost-10 hash, which takes seconds
	// under the race detector and starves the other tests.)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := writeConfig(t, fmt.Sprintf("basic_auth_users:\n  admin: %s\n", hash))
	cfg := writeConfig(t, `checks:
  - name: nothing
    type: tcp
    address: 127.0.0.1:9
    interval: 1h
`)
	r := startDaemon(t, daemon.Options{ConfigFile: cfg, WebConfigFile: webCfg})
	auth := func(user, pass string) func(*http.Request) {
		return func(req *http.Request) { req.SetBasicAuth(user, pass) }
	}
	for _, c := range []struct {
		method, path string
		setup        func(*http.Request)
		want         int
	}{
		{http.MethodGet, "/metrics", nil, http.StatusUnauthorized},
		{http.MethodGet, "/metrics", auth("admin", "wrong"), http.StatusUnauthorized},
		{http.MethodGet, "/metrics", auth("admin", "s3cret"), http.StatusOK},
		{http.MethodGet, "/-/healthy", nil, http.StatusUnauthorized},
		{http.MethodPost, "/-/reload", nil, http.StatusUnauthorized},
		{http.MethodPost, "/-/reload", auth("admin", "s3cret"), http.StatusOK},
	} {
		if code, body := r.do(t, c.method, c.path, c.setup); code != c.want {
			t.Errorf("%s %s (auth %v): %d, want %d\n%s", c.method, c.path, c.setup != nil, code, c.want, body)
		}
	}
}

// echoTarget answers every check 200 with the request's credentials echoed
// in one encoded form (chosen by ?form=), in the JSON body or a header, so
// the expectation that fails quotes it in the run's reason.
func echoTarget(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		_, pw, _ := r.BasicAuth()
		var echo string
		switch r.URL.Query().Get("form") {
		case "header":
			w.Header().Set("X-Seen-Authorization", auth)
		case "basic":
			echo = "unauthorized: " + auth
		case "json":
			// Escaped as PHP and others write JSON: "\/" for "/".
			b, _ := json.Marshal(pw)
			echo = "bad password " + strings.ReplaceAll(string(b[1:len(b)-1]), "/", `\/`)
		case "query":
			echo = "bad password=" + url.QueryEscape(pw)
		case "path":
			echo = "no user at /users/" + url.PathEscape(pw)
		}
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(map[string]string{"echo": echo})
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// echoReceiver answers every notification with an error status whose body
// echoes the hook's token JSON-escaped, URL-encoded and as a bare path
// segment, as receivers do in "invalid token" answers.
func echoReceiver(t *testing.T, status int) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		full, _ := json.Marshal(srv.URL + r.URL.Path)
		segs := strings.Split(r.URL.Path, "/")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":"invalid_token","url":%s,"path":%q,"token":%q}`,
			strings.ReplaceAll(string(full), "/", `\/`), url.QueryEscape(r.URL.Path), segs[len(segs)-1])
	}))
	t.Cleanup(srv.Close)
	return srv
}

// secretForms is every form a secret must never take outside the process.
func secretForms(secret string) []string {
	forms := []string{secret, url.QueryEscape(secret), url.PathEscape(secret), fmt.Sprintf("%q", secret)}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(secret)
		j := strings.TrimSpace(b.String())
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	return forms
}

// TestEncodedSecretsNeverLeak: a basic-auth password and a webhook token
// that targets and receivers echo encoded (base64 in an Authorization
// header, JSON-escaped, URL-encoded, as a path segment) appear in no log
// line, no byte of the SQLite files, no API response and no status page,
// although the failures that quote them are shown everywhere.
func TestEncodedSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const (
		user     = "synthetic-user"
		password = `pa/ss+w0rd&<é>?x`
		token1   = "XXXXSECRETtoken1"
		token2   = "YYYYSECRETtoken2"
	)
	target := echoTarget(t)
	hook := echoReceiver(t, http.StatusInternalServerError) // retried
	chat := echoReceiver(t, http.StatusNotFound)            // rejected
	hookURL := hook.URL + "/services/T0A1B2C3D/B0E4F5G6H/" + token1
	chatURL := chat.URL + "/services/T9Z8Y7X6W/B5V4U3T2S/" + token2 + "?key=ZZZZkey99secret"

	var b strings.Builder
	b.WriteString("global:\n  interval: 1s\n  timeout: 800ms\nchecks:\n")
	forms := []string{"header", "basic", "json", "query", "path"}
	for _, form := range forms {
		expect := "json: {echo: {eq: \"\"}}"
		if form == "header" {
			expect = "headers: {X-Seen-Authorization: \"^nothing$\"}"
		}
		fmt.Fprintf(&b, `  - name: echo-%s
    type: http
    url: %s/login?form=%s
    http:
      basic_auth: {username: %s, password: '%s'}
    expect:
      %s
`, form, target.URL, form, user, password, expect)
	}
	fmt.Fprintf(&b, `alerts:
  - name: EchoFailing
    when: success_ratio < 0.5
    for: 0s
    annotations:
      summary: "{{ .check }} failing"
notifiers:
  - name: hook
    type: webhook
    url: %s
  - name: chat
    type: slack
    url: %s
`, hookURL, chatURL)

	var logs syncBuffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	dir := t.TempDir()
	r := startDaemon(t, daemon.Options{ConfigFile: writeConfig(t, b.String()), StoragePath: dir, Logger: log,
		Notifiers: kinds.Notifiers(), EvalInterval: 200 * time.Millisecond, ExternalURL: "http://vantage.test"})

	// Wait until every check has failed with its echo quoted, and both
	// receivers have refused a notification.
	var checksBody, timelineBody string
	testenv.Eventually(t, 30*time.Second, "failures and refused notifications", func() error {
		_, checksBody = r.do(t, "GET", "/api/v1/checks", nil)
		if strings.Count(checksBody, `"last_result": "failure"`) < len(forms) {
			return fmt.Errorf("not every check has failed yet:\n%s", checksBody)
		}
		_, timelineBody = r.do(t, "GET", "/api/v1/timeline?since=1h", nil)
		for _, n := range []string{`"notifier": "hook"`, `"notifier": "chat"`} {
			if !strings.Contains(timelineBody, n) || !strings.Contains(timelineBody, "notification_") {
				return fmt.Errorf("no notification event for %s yet", n)
			}
		}
		if strings.Count(timelineBody, `"kind": "notification_failed"`) < 2 {
			return fmt.Errorf("want a failed notification per receiver:\n%s", timelineBody)
		}
		return nil
	})

	seen := map[string]string{
		"/api/v1/checks":   checksBody,
		"/api/v1/timeline": timelineBody,
	}
	for _, p := range []string{"/", "/api/v1/alerts", "/metrics", "/api/v1/timeline?since=1h&format=markdown"} {
		code, body := r.do(t, "GET", p, nil)
		if code != 200 {
			t.Errorf("GET %s: %d", p, code)
		}
		seen[p] = body
	}
	// Every stored run: the API and the run pages.
	for id := 1; ; id++ {
		code, body := r.do(t, "GET", fmt.Sprintf("/api/v1/runs/%d", id), nil)
		if code == 404 {
			if id <= len(forms) {
				t.Fatalf("only %d runs stored", id-1)
			}
			break
		}
		seen[fmt.Sprintf("/api/v1/runs/%d", id)] = body
		_, seen[fmt.Sprintf("/runs/%d", id)] = r.do(t, "GET", fmt.Sprintf("/runs/%d", id), nil)
	}
	// The failures were shown (redacted), so the test would see a leak.
	if n := strings.Count(checksBody, `\u003csecret\u003e`); n < len(forms) {
		t.Errorf("%d redacted echoes in the checks' reasons, want one per check:\n%s", n, checksBody)
	}
	if !strings.Contains(timelineBody, "receiver answered 500") || !strings.Contains(timelineBody, "receiver answered 404") ||
		!strings.Contains(timelineBody, "invalid_token") {
		t.Errorf("the receivers' answers are not in the timeline:\n%s", timelineBody)
	}
	for _, f := range forms {
		if !strings.Contains(seen["/"], "echo-"+f) {
			t.Errorf("status page lacks check echo-%s", f)
		}
	}

	// The SQLite files as bytes, the WAL included, while the daemon runs.
	readDBFiles(t, dir, seen)
	seen["logs"] = logs.String()
	if !strings.Contains(seen["logs"], "receiver") {
		t.Errorf("the refused notifications were not logged:\n%s", seen["logs"])
	}

	var secrets []string
	secrets = append(secrets, secretForms(password)...)
	cred := []byte(user + ":" + password)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b64 := enc.EncodeToString(cred)
		secrets = append(secrets, secretForms(b64)...)
		// The password's part of it as letters and digits only, which no
		// escaping (JSON, HTML, URL) changes.
		secrets = append(secrets, longestAlnum(b64[len(user)*4/3+1:]))
	}
	for _, s := range []string{"SECRETtoken", "T0A1B2C3D", "B0E4F5G6H", "T9Z8Y7X6W", "B5V4U3T2S", "ZZZZkey99secret", "w0rd"} {
		secrets = append(secrets, s)
	}
	for where, text := range seen {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				i := strings.Index(text, s)
				t.Errorf("%q leaked into %s: ...%s...", s, where, text[max(0, i-80):min(len(text), i+len(s)+40)])
			}
		}
	}
}

// longestAlnum is the longest run of ASCII letters and digits in s.
func longestAlnum(s string) string {
	best, start := "", -1
	for i := 0; i <= len(s); i++ {
		alnum := i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9')
		switch {
		case alnum && start < 0:
			start = i
		case !alnum && start >= 0:
			if i-start > len(best) {
				best = s[start:i]
			}
			start = -1
		}
	}
	return best
}

// readDBFiles adds the bytes of every SQLite file in dir (the WAL
// included) to seen as "file NAME".
func readDBFiles(t *testing.T, dir string, seen map[string]string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "vantage.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen["file "+filepath.Base(f)] = string(data)
	}
}
