package daemon_test

import (
	"fmt"
	"net/http"
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
// neither in /metrics, nor in logs at debug level, nor in reload errors.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	shop := startShop(t)
	setFault(t, shop, "lb2:refuse")
	setFault(t, shop, "lb3:stall")
	var logs syncBuffer
	log := zerolog.New(&logs).Level(zerolog.DebugLevel)
	text := shopConfig(shop, time.Second, 800*time.Millisecond, secretChecks(shop))
	cfgFile := writeConfig(t, text)
	r := startDaemon(t, daemon.Options{ConfigFile: cfgFile, Getenv: secretEnv, Logger: log})

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

	for where, s := range map[string]string{"/metrics": e.text, "logs": logs.String(), "reload response": body, "run reasons": reasons.String()} {
		if strings.Contains(s, testSecret) {
			t.Errorf("the secret leaked into %s:\n%s", where, s)
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
