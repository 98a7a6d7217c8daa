package schema_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/demo"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/schema"
)

const checkedIn = "../docs/config.schema.json"

// The checked-in schema is what the code generates today.
func TestCheckedInSchemaIsCurrent(t *testing.T) {
	got, err := schema.JSON(kinds.Registry())
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(checkedIn)
	if err != nil {
		t.Fatalf("%v; create it with: go run ./cmd/vantage schema > docs/config.schema.json", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/config.schema.json differs from the schema generated from package checks; "+
			"update it with: go run ./cmd/vantage schema > docs/config.schema.json\n(first difference near byte %d)", firstDiff(got, want))
	}
	var doc map[string]any
	if err := json.Unmarshal(want, &doc); err != nil {
		t.Fatalf("checked-in schema is not JSON: %v", err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func decodeYAML(t *testing.T, data []byte) any {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	return doc
}

func validateFile(t *testing.T, s *schema.Schema, file string) error {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(decodeYAML(t, data))
}

// Every config the loader accepts, the schema accepts: the full example,
// the loader's valid fixtures and the demo shop's generated configs.
func TestValidConfigsPassSchema(t *testing.T) {
	s := schema.Generate(kinds.Registry())
	files := []string{"../config.example.yaml"}
	more, _ := filepath.Glob("../checks/testdata/valid-*.yaml")
	incl, _ := filepath.Glob("../checks/testdata/valid-include.d/*.yaml")
	files = append(append(files, more...), incl...)
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		if err := validateFile(t, s, f); err != nil {
			t.Errorf("%s: schema rejects a valid config:\n%v", f, err)
		}
	}
	// The example must also load, so this test validates real configs.
	if _, err := kinds.Registry().Load("../config.example.yaml", nil); err != nil {
		t.Fatalf("config.example.yaml does not load: %v", err)
	}

	shop, err := demo.Start(t.Context(), demo.Options{Dir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer shop.Close()
	for name, cfg := range map[string]string{
		"demo":         shop.Config(),
		"demo-browser": shop.ConfigWithOptions(demo.ConfigOptions{Browser: true, WebhookURL: "http://127.0.0.1:1/hook"}),
	} {
		if _, err := kinds.Registry().Parse([]byte(cfg), name+".yaml", nil); err != nil {
			t.Fatalf("%s config does not load: %v", name, err)
		}
		if err := s.Validate(decodeYAML(t, []byte(cfg))); err != nil {
			t.Errorf("%s: schema rejects the demo config:\n%v", name, err)
		}
	}
}

// Configs the loader rejects for a structural reason the schema expresses
// are rejected by the schema too, with a pointer to the problem.
func TestInvalidConfigsFailSchema(t *testing.T) {
	s := schema.Generate(kinds.Registry())
	for _, tc := range []struct{ file, want string }{
		{"invalid-unknown-key.yaml", "unknown key"},
		{"invalid-wrong-type.yaml", "/global/down_after"},
		{"invalid-bad-duration.yaml", "does not match"},
		{"invalid-unknown-type.yaml", "is not one of"},
		{"invalid-ip-version.yaml", "ip_version"},
		{"invalid-check-name.yaml", "/checks/0/name"},
		{"invalid-tls-unknown-key.yaml", "unknown key"},
		{"invalid-missing-type.yaml", `missing required key "type"`},
		{"invalid-top-level.yaml", "expected object"},
		{"invalid-byte-size.yaml", "max_body_bytes"},
		{"invalid-notifier-type.yaml", "is not one of"},
		{"invalid-screenshot.yaml", "is not one of"},
		{"invalid-node-names-name.yaml", "/checks/0/node_names"},
		{"invalid-node-name.yaml", "/checks/0/nodes/addresses/1"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := filepath.Join("../checks/testdata", tc.file)
			if _, err := kinds.Registry().Load(f, nil); err == nil {
				t.Fatalf("the loader accepts %s; pick another fixture", f)
			}
			err := validateFile(t, s, f)
			if err == nil {
				t.Fatalf("schema accepts %s", f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestSchemaShape(t *testing.T) {
	s := schema.Generate(kinds.Registry())
	if s.Schema != schema.Draft || s.ID == "" {
		t.Errorf("$schema %q, $id %q", s.Schema, s.ID)
	}
	for _, def := range []string{"Check", "Path", "Alert", "Notifier", "Global", "Expect", "httpprobe.Step", "browser.Step",
		"NodeAddr", "prometheus.TLSConfig", "prometheus.HTTPClientConfig", "prometheus.OAuth2"} {
		if s.Defs[def] == nil {
			t.Errorf("$defs has no %s", def)
		}
	}
	// prometheus/common's inline ProxyConfig is flattened into http_config.
	hc := s.Defs["prometheus.HTTPClientConfig"]
	for _, k := range []string{"proxy_url", "tls_config", "basic_auth", "authorization", "follow_redirects", "http_headers"} {
		if hc.Properties[k] == nil {
			t.Errorf("http_config lacks %s", k)
		}
	}
	if tls := s.Defs["prometheus.TLSConfig"]; tls.Properties["min_version"] == nil || len(tls.Properties["min_version"].Enum) == 0 {
		t.Errorf("tls_config min_version should be an enum of TLS versions")
	}

	for _, tc := range []struct {
		name string
		doc  string
		ok   bool
	}{
		{"env int", "global: {down_after: '${N:-3}'}", true},
		{"env duration", "global: {interval: '${I:-30s}'}", true},
		{"plain string for int", "global: {down_after: three}", false},
		{"7d duration", "global: {flap_window: 7d}", true},
		{"1h30m duration", "global: {flap_window: 1h30m}", true},
		{"float duration", "global: {flap_window: 1.5h}", false},
		{"ip_version any", "paths: [{name: a, ip_version: any}]", true},
		{"ip_version 5", "paths: [{name: a, ip_version: 5}]", false},
		{"node object", "checks: [{name: a, type: http, nodes: {addresses: [{name: lb2, address: 10.0.0.12}]}}]", true},
		{"node object without address", "checks: [{name: a, type: http, nodes: {addresses: [{name: lb2}]}}]", false},
		{"node_names", "global: {node_names: {10.0.0.12: lb2}}\nchecks: [{name: a, type: http, nodes: {resolve: all}, node_names: {10.0.0.13: lb3}}]", true},
		{"node_names bad name", "global: {node_names: {10.0.0.12: LB2}}", false},
		{"node object unknown key", "checks: [{name: a, type: http, nodes: {addresses: [{ip: 10.0.0.1}]}}]", false},
		{"json eq any", `checks: [{name: a, type: http, expect: {json: {"a.b": {eq: [1, "x"]}}}}]`, true},
		{"size int", "checks: [{name: a, type: http, http: {max_body_bytes: 1024}}]", true},
		{"size negative", "checks: [{name: a, type: http, http: {max_body_bytes: -1}}]", false},
		{"http_config header", "notifiers: [{name: a, type: webhook, url: 'http://x', http_config: {http_headers: {X-A: {values: [b]}}}}]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Validate(decodeYAML(t, []byte(tc.doc)))
			if (err == nil) != tc.ok {
				t.Errorf("valid = %v, want %v (%v)", err == nil, tc.ok, err)
			}
		})
	}
}
