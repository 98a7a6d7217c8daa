package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/internal/testenv"
	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/probe"
	"github.com/vantage-monitoring/vantage/schema"
)

type obj = map[string]any

// manifest is one YAML document of deploy/kubernetes.
type manifest struct {
	file string
	doc  obj
}

func (m manifest) kind() string { return str(m.doc, "kind") }
func (m manifest) name() string { return str(m.doc, "metadata", "name") }
func (m manifest) String() string {
	return m.file + ": " + m.kind() + "/" + m.name()
}

// get walks maps by key and lists by index ("0").
func get(v any, path ...string) any {
	for _, p := range path {
		switch c := v.(type) {
		case obj:
			v = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var doc obj
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if doc == nil {
				continue
			}
			out = append(out, manifest{file: f, doc: doc})
		}
	}
	return out
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func TestManifestsRequiredFields(t *testing.T) {
	ms := loadManifests(t)
	kinds := map[string]int{}
	for _, m := range ms {
		kinds[m.kind()]++
		if str(m.doc, "apiVersion") == "" || m.kind() == "" {
			t.Errorf("%s: apiVersion and kind are required", m)
		}
		if !dns1123.MatchString(m.name()) || len(m.name()) > 63 {
			t.Errorf("%s: metadata.name %q is not a DNS-1123 label", m, m.name())
		}
		if str(m.doc, "metadata", "namespace") == "" {
			t.Errorf("%s: set metadata.namespace so the files apply together", m)
		}
		switch m.kind() {
		case "Deployment", "StatefulSet", "Service", "ServiceMonitor", "PodMonitor", "PersistentVolumeClaim":
			if get(m.doc, "spec") == nil {
				t.Errorf("%s: spec is required", m)
			}
		}
	}
	for _, k := range []string{"Deployment", "StatefulSet", "ConfigMap", "Service", "ServiceMonitor", "PodMonitor"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

func byKind(ms []manifest, kind string) []manifest {
	var out []manifest
	for _, m := range ms {
		if m.kind() == kind {
			out = append(out, m)
		}
	}
	return out
}

// subset reports whether every key of sel has the same value in labels.
func subset(sel, labels any) bool {
	s, _ := sel.(obj)
	l, _ := labels.(obj)
	if len(s) == 0 {
		return false
	}
	for k, v := range s {
		if l[k] != v {
			return false
		}
	}
	return true
}

func TestWorkloads(t *testing.T) {
	ms := loadManifests(t)
	workloads := append(byKind(ms, "Deployment"), byKind(ms, "StatefulSet")...)
	configMaps := map[string]bool{}
	for _, m := range byKind(ms, "ConfigMap") {
		configMaps[m.name()] = true
	}
	for _, w := range workloads {
		tpl := get(w.doc, "spec", "template")
		if !subset(get(w.doc, "spec", "selector", "matchLabels"), get(tpl, "metadata", "labels")) {
			t.Errorf("%s: spec.selector.matchLabels must match the pod template's labels", w)
		}
		if get(tpl, "spec", "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: pods must run as non-root", w)
		}
		volumes := map[string]any{}
		for _, v := range list(tpl, "spec", "volumes") {
			volumes[str(v, "name")] = v
			if cm := str(v, "configMap", "name"); cm != "" && !configMaps[cm] {
				t.Errorf("%s: volume %s uses ConfigMap %s, which no manifest defines", w, str(v, "name"), cm)
			}
		}
		for _, v := range list(w.doc, "spec", "volumeClaimTemplates") {
			volumes[str(v, "metadata", "name")] = v
		}
		containers := list(tpl, "spec", "containers")
		if len(containers) == 0 {
			t.Fatalf("%s: no containers", w)
		}
		for _, c := range containers {
			if img := str(c, "image"); img == "" || strings.HasSuffix(img, ":latest") {
				t.Errorf("%s: container image %q; pin a version", w, img)
			}
			var web bool
			for _, p := range list(c, "ports") {
				if str(p, "name") == "web" && get(p, "containerPort") == 9947 {
					web = true
				}
			}
			if !web {
				t.Errorf("%s: container needs port web (9947)", w)
			}
			for probe, path := range map[string]string{"livenessProbe": "/-/healthy", "readinessProbe": "/-/ready"} {
				if str(c, probe, "httpGet", "path") != path || str(c, probe, "httpGet", "port") != "web" {
					t.Errorf("%s: %s must GET %s on port web", w, probe, path)
				}
			}
			for _, r := range []string{"cpu", "memory"} {
				if str(c, "resources", "requests", r) == "" {
					t.Errorf("%s: resources.requests.%s is required", w, r)
				}
			}
			if str(c, "resources", "limits", "memory") == "" {
				t.Errorf("%s: set a memory limit (Chromium)", w)
			}
			for _, vm := range list(c, "volumeMounts") {
				if volumes[str(vm, "name")] == nil {
					t.Errorf("%s: volumeMount %s has no volume", w, str(vm, "name"))
				}
			}
			if !strings.Contains(commandLine(c), "--config.file=/etc/vantage/vantage.yaml") {
				t.Errorf("%s: container does not run the mounted config: %s", w, commandLine(c))
			}
		}
	}
	// Services select a workload's pods and expose port web.
	for _, s := range byKind(ms, "Service") {
		found := false
		for _, w := range workloads {
			if subset(get(s.doc, "spec", "selector"), get(w.doc, "spec", "template", "metadata", "labels")) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: selector matches no workload", s)
		}
		if str(s.doc, "spec", "ports", "0", "name") != "web" {
			t.Errorf("%s: first port must be named web", s)
		}
	}
	for _, st := range byKind(ms, "StatefulSet") {
		svc := str(st.doc, "spec", "serviceName")
		ok := false
		for _, s := range byKind(ms, "Service") {
			ok = ok || (s.name() == svc && str(s.doc, "spec", "clusterIP") == "None")
		}
		if !ok {
			t.Errorf("%s: serviceName %q must be a headless Service in the manifests", st, svc)
		}
	}
}

func commandLine(c any) string {
	var parts []string
	for _, k := range []string{"command", "args"} {
		for _, a := range list(c, k) {
			parts = append(parts, a.(string))
		}
	}
	return strings.Join(parts, " ")
}

func env(c any) map[string]any {
	out := map[string]any{}
	for _, e := range list(c, "env") {
		out[str(e, "name")] = e
	}
	return out
}

// The StatefulSet's shell snippet turns each pod's ordinal into --shard=I/N
// with N = replicas, and vantage accepts the result.
func TestStatefulSetShards(t *testing.T) {
	sh := testenv.LookPath(t, "sh", "dash")
	for _, st := range byKind(loadManifests(t), "StatefulSet") {
		replicas, _ := get(st.doc, "spec", "replicas").(int)
		c := get(st.doc, "spec", "template", "spec", "containers", "0")
		shards := str(env(c)["VANTAGE_SHARDS"], "value")
		if shards != strconv.Itoa(replicas) {
			t.Errorf("%s: VANTAGE_SHARDS %q != replicas %d", st, shards, replicas)
		}
		cmd := list(c, "command")
		args := list(c, "args")
		if len(cmd) < 2 || cmd[len(cmd)-2] != "/bin/sh" || cmd[len(cmd)-1] != "-c" || len(args) != 1 {
			t.Fatalf("%s: want command [... /bin/sh -c] and one script arg", st)
		}
		script := args[0].(string)
		if !strings.HasPrefix(script, "exec /usr/bin/vantage ") {
			t.Fatalf("%s: script must exec vantage: %s", st, script)
		}
		// Run the real script with echo in place of vantage.
		script = "exec printf '%s\\n' " + strings.TrimPrefix(script, "exec /usr/bin/vantage ")
		seen := map[string]bool{}
		for i := range replicas {
			x := exec.Command(sh, "-c", script)
			x.Env = []string{"HOSTNAME=" + st.name() + "-" + strconv.Itoa(i), "VANTAGE_SHARDS=" + shards}
			out, err := x.Output()
			if err != nil {
				t.Fatalf("%s: script: %v", st, err)
			}
			var flag string
			for _, a := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if v, ok := strings.CutPrefix(a, "--shard="); ok {
					flag = v
				}
			}
			want := strconv.Itoa(i) + "/" + shards
			if flag != want {
				t.Errorf("%s pod %d: --shard=%q, want %q", st, i, flag, want)
			}
			if _, err := probe.ParseShard(flag); err != nil {
				t.Errorf("%s pod %d: vantage rejects --shard=%s: %v", st, i, flag, err)
			}
			seen[flag] = true
		}
		if len(seen) != replicas {
			t.Errorf("%s: shards %v are not distinct", st, seen)
		}
	}
}

// Each workload's mounted config loads, laid out on disk as the ConfigMap
// volume's items put it and with the workload's environment (secrets from
// the Secret manifest), and passes the JSON Schema.
func TestConfigMapConfigLoads(t *testing.T) {
	ms := loadManifests(t)
	cms := map[string]manifest{}
	for _, m := range byKind(ms, "ConfigMap") {
		cms[m.name()] = m
	}
	secrets := map[string]obj{}
	for _, m := range byKind(ms, "Secret") {
		d, _ := get(m.doc, "stringData").(obj)
		secrets[m.name()] = d
	}
	s := schema.Generate(kinds.Registry())
	workloads := append(byKind(ms, "Deployment"), byKind(ms, "StatefulSet")...)
	for _, w := range workloads {
		tpl := get(w.doc, "spec", "template", "spec")
		c := get(tpl, "containers", "0")
		dir := t.TempDir()
		for _, v := range list(tpl, "volumes") {
			cmName := str(v, "configMap", "name")
			if cmName == "" {
				continue
			}
			var mount string
			for _, vm := range list(c, "volumeMounts") {
				if str(vm, "name") == str(v, "name") {
					mount = str(vm, "mountPath")
				}
			}
			data, _ := get(cms[cmName].doc, "data").(obj)
			for _, it := range list(v, "configMap", "items") {
				text, ok := data[str(it, "key")].(string)
				if !ok {
					t.Fatalf("%s: ConfigMap %s has no key %s", w, cmName, str(it, "key"))
				}
				p := filepath.Join(dir, mount, str(it, "path"))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
				var doc any
				if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
					t.Fatal(err)
				}
				if err := s.Validate(doc); err != nil {
					t.Errorf("%s: ConfigMap %s key %s fails the schema: %v", w, cmName, str(it, "key"), err)
				}
			}
		}
		vars := map[string]string{}
		for name, e := range env(c) {
			if v := str(e, "value"); v != "" {
				vars[name] = v
			}
			if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
				v, _ := secrets[str(ref, "name")][str(ref, "key")].(string)
				vars[name] = v
			}
		}
		cfgFile := filepath.Join(dir, "/etc/vantage/vantage.yaml")
		cfg, err := kinds.Registry().Load(cfgFile, func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Errorf("%s: the mounted config does not load:\n%v", w, err)
			continue
		}
		if len(cfg.Warnings) > 0 {
			t.Errorf("%s: config warnings: %v", w, cfg.Warnings)
		}
		if loc := str(get(w.doc, "spec", "template", "metadata", "labels"), "vantage.io/location"); cfg.Global.Location != loc {
			t.Errorf("%s: config location %q, pod label vantage.io/location %q", w, cfg.Global.Location, loc)
		}
		included := false
		for _, ch := range cfg.Checks {
			included = included || ch.Pos.File != cfgFile
		}
		if !included {
			t.Errorf("%s: no check came from checks.d; the include layout is broken", w)
		}
	}
}

func TestMonitorsSelectServices(t *testing.T) {
	ms := loadManifests(t)
	for _, mon := range append(byKind(ms, "ServiceMonitor"), byKind(ms, "PodMonitor")...) {
		sel := get(mon.doc, "spec", "selector", "matchLabels")
		key, labelsPath := "endpoints", []string{"metadata", "labels"}
		targets := byKind(ms, "Service")
		if mon.kind() == "PodMonitor" {
			key = "podMetricsEndpoints"
			targets = append(byKind(ms, "Deployment"), byKind(ms, "StatefulSet")...)
			labelsPath = []string{"spec", "template", "metadata", "labels"}
		}
		n := 0
		for _, tg := range targets {
			if subset(sel, get(tg.doc, labelsPath...)) {
				n++
			}
		}
		if n != len(targets) || n == 0 {
			t.Errorf("%s selects %d of %d targets", mon, n, len(targets))
		}
		eps := list(mon.doc, "spec", key)
		if len(eps) == 0 || str(eps[0], "port") != "web" || str(eps[0], "path") != "/metrics" {
			t.Errorf("%s: %s must scrape port web at /metrics", mon, key)
		}
	}
}
