package checks_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/vantage-monitoring/vantage/checks"
)

func loadText(t *testing.T, text string) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vantage.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestNotifierSecretsRedacted: a notifier URL written inline (not from
// ${VAR} or url_file) still has its token-like path segments and query
// values redacted, as does its http_config password, with encoded forms.
func TestNotifierSecretsRedacted(t *testing.T) {
	cfg := loadText(t, `checks:
  - name: home
    type: http
    url: https://www.shop.test/
notifiers:
  - name: team
    type: slack
    url: https://hooks.example/services/T0A1B2C3D/B0E4F5G6H/XXXXSECRETtoken1?format=json
  - name: am
    type: alertmanager
    url: http://127.0.0.1:9/
    http_config:
      basic_auth: {username: vantage, password: am-Passw0rd}
`)
	for text, want := range map[string]string{
		"invalid token XXXXSECRETtoken1": "invalid token <secret>",
		`"url":"https:\/\/hooks.example\/services\/T0A1B2C3D\/B0E4F5G6H\/XXXXSECRETtoken1"`: `"url":"https:\/\/hooks.example\/services\/<secret>\/<secret>\/<secret>"`,
		"Authorization: Basic dmFudGFnZTphbS1QYXNzdzByZA==":                                 "Authorization: Basic <secret>",
		"password am-Passw0rd":     "password <secret>",
		"the services answer json": "the services answer json",
	} {
		if got := cfg.Secrets.Redact(text); got != want {
			t.Errorf("Redact(%q) = %q, want %q", text, got, want)
		}
	}
}

// TestShortSecretsWarn: explicit secrets shorter than MinSecretLen cannot
// be redacted without mangling text, so loading says so, at the value.
func TestShortSecretsWarn(t *testing.T) {
	cfg := loadText(t, `checks:
  - name: a
    type: http
    url: https://www.shop.test/
    http:
      basic_auth: {username: synthetic, password: abc}
  - name: b
    type: http
    url: https://www.shop.test/
    http:
      bearer_token: xyz
  - name: c
    type: http
    url: https://www.shop.test/
    http:
      basic_auth: {username: synthetic, password: long-enough}
`)
	var got []string
	for _, w := range cfg.Warnings {
		e := w.Error()
		got = append(got, e[strings.Index(e, "vantage.yaml"):])
	}
	want := []string{
		"vantage.yaml:6:51: basic_auth.password is shorter than 4 characters, so it is not redacted from logs, errors, stored runs and the API; use a longer secret",
		"vantage.yaml:11:21: bearer_token is shorter than 4 characters, so it is not redacted from logs, errors, stored runs and the API; use a longer secret",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The Authorization header of the short password is still redacted.
	if got := cfg.Secrets.Redact("Basic c3ludGhldGljOmFiYw=="); got != "Basic <secret>" {
		t.Errorf("base64 of synthetic:abc: %q", got)
	}
}
