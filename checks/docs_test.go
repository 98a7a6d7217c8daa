package checks_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/internal/testenv"

	. "github.com/vantage-monitoring/vantage/checks"
)

// docsFragment, alone on the line before a ```yaml fence in README.md or
// docs/*.md, marks the block as a fragment: a piece of a config shown on
// its own (one check, one list item) that need not load. It must still
// parse as YAML. Every other YAML block is either a whole vantage config,
// which must load with the real loader, or another tool's file
// (Alertmanager, Prometheus, Kubernetes), which must parse.
const docsFragment = "<!-- fragment -->"

// foreignKeys are top-level keys of the other tools' YAML the docs show:
// Alertmanager (route, receivers), Prometheus (scrape_configs, rule
// files' groups), Kubernetes (apiVersion, kind), blackbox_exporter
// (modules), exporter-toolkit's web config (tls_server_config), GitHub
// Actions (jobs).
var foreignKeys = []string{"route", "receivers", "inhibit_rules", "templates", "time_intervals",
	"scrape_configs", "rule_files", "alerting", "remote_write", "groups",
	"apiVersion", "kind", "metadata", "spec", "modules",
	"tls_server_config", "http_server_config", "basic_auth_users", "jobs"}

type docBlock struct {
	file     string
	line     int // of the first line of YAML
	text     string
	fragment bool
}

// docBlocks extracts the ```yaml (or ```yml) blocks of a Markdown file,
// with the fence's indentation (a block inside a list item) removed.
func docBlocks(t *testing.T, file string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []docBlock
	var cur *docBlock
	var indent, prev string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && (trimmed == "```yaml" || trimmed == "```yml"):
			indent = line[:len(line)-len(strings.TrimLeft(line, " \t"))]
			cur = &docBlock{file: file, line: n + 1, fragment: strings.TrimSpace(prev) == docsFragment}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += strings.TrimPrefix(line, indent) + "\n"
		}
		prev = line
	}
	if cur != nil {
		t.Errorf("%s:%d: unterminated ```yaml block", file, cur.line-1)
	}
	return out
}

// docsEnv is the environment doc blocks load with: every ${VAR} is set,
// to a URL when its name says it is one.
func docsEnv(name string) (string, bool) {
	if strings.HasSuffix(name, "_URL") {
		return "http://127.0.0.1:9/hook", true
	}
	return "x", true
}

// placeFiles makes the absolute paths a block names in *_file keys
// (/run/secrets/…, /etc/ssl/…) files under dir, rewriting the block to
// them: the loader reads such files, and a deployment's paths do not exist
// here. A url_file holds a URL, any other file "x".
func placeFiles(t *testing.T, n *yaml.Node, dir string) (placed int) {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && strings.HasSuffix(k.Value, "_file") && filepath.IsAbs(v.Value) {
				content := "x"
				if k.Value == "url_file" {
					content = "http://127.0.0.1:9/hook"
				}
				path := filepath.Join(dir, strings.ReplaceAll(strings.TrimPrefix(v.Value, "/"), "/", "_"))
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
				v.Value = path
				placed++
			}
		}
	}
	for _, c := range n.Content {
		placed += placeFiles(t, c, dir)
	}
	return placed
}

// checkForeign checks another tool's block with that tool where Debian
// has it here: Alertmanager's config with amtool, Prometheus' config
// (syntax only: the files it names are the reader's) and rule files with
// promtool, blackbox_exporter's with itself. Other files were parsed
// already.
func checkForeign(t *testing.T, where string, keys []string, text string) {
	var tool, pkg string
	var args []string // the file follows
	switch {
	case slices.Contains(keys, "route") || slices.Contains(keys, "receivers"):
		tool, pkg, args = "amtool", "prometheus-alertmanager", []string{"check-config"}
	case slices.Contains(keys, "groups"):
		tool, pkg, args = "promtool", "prometheus", []string{"check", "rules"}
	case slices.Contains(keys, "scrape_configs") || slices.Contains(keys, "remote_write") || slices.Contains(keys, "rule_files"):
		tool, pkg, args = "promtool", "prometheus", []string{"check", "config", "--syntax-only"}
	case slices.Contains(keys, "modules"):
		tool, pkg, args = "prometheus-blackbox-exporter", "prometheus-blackbox-exporter", []string{"--config.check", "--config.file"}
	default:
		return
	}
	t.Run(where, func(t *testing.T) {
		bin := testenv.LookPath(t, tool, pkg)
		file := filepath.Join(t.TempDir(), "block.yaml")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, append(args, file)...).CombinedOutput(); err != nil {
			t.Errorf("%s: %s %s rejects the block: %v\n%s\n%s", where, tool, strings.Join(args, " "), err, out, text)
		}
	})
}

// TestDocsYAMLBlocks: every YAML block in README.md and docs/*.md is valid
// (see docsFragment). A vantage config block loads with ${VAR}s set (see
// docsEnv) and the absolute files it names in place (see placeFiles);
// relative paths resolve against an empty directory.
func TestDocsYAMLBlocks(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../README.md"}, files...)
	known := ConfigKeys()
	counts := map[string]int{}
	for _, f := range files {
		for _, b := range docBlocks(t, f) {
			where := fmt.Sprintf("%s:%d", strings.TrimPrefix(b.file, "../"), b.line)
			var root yaml.Node
			if err := yaml.Unmarshal([]byte(b.text), &root); err != nil {
				t.Errorf("%s: not YAML: %v\n%s", where, err, b.text)
				continue
			}
			if b.fragment {
				counts["fragment"]++
				continue
			}
			var keys []string
			if doc := Deref(&root); doc != nil && doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 &&
				doc.Content[0].Kind == yaml.MappingNode {
				for i := 0; i < len(doc.Content[0].Content); i += 2 {
					keys = append(keys, doc.Content[0].Content[i].Value)
				}
			}
			var vantage, foreign bool
			for _, k := range keys {
				vantage = vantage || slices.Contains(known, k)
				foreign = foreign || slices.Contains(foreignKeys, k)
			}
			switch {
			case foreign:
				counts["other tool's"]++
				checkForeign(t, where, keys, b.text)
			case vantage:
				counts["vantage config"]++
				dir := t.TempDir()
				text := []byte(b.text)
				if placeFiles(t, &root, dir) > 0 {
					// Positions in errors then follow the re-encoded text.
					if text, err = yaml.Marshal(&root); err != nil {
						t.Fatal(err)
					}
				}
				name := filepath.Join(dir, "block.yaml")
				cfg, err := Parse(text, name, docsEnv)
				if err != nil {
					t.Errorf("%s: a vantage config block does not load (fix it, or mark it %s):\n%v\n%s",
						where, docsFragment, strings.ReplaceAll(err.Error(), name, "block.yaml"), b.text)
					continue
				}
				// The docs teach no deprecated or ignored key.
				for _, w := range cfg.Warnings {
					if strings.Contains(w.Msg, "is ignored") {
						t.Errorf("%s: deprecated: %s", where, w.Msg)
					}
				}
			default:
				t.Errorf("%s: neither a vantage config (top-level keys %v) nor another tool's YAML; fix it or mark it %s:\n%s",
					where, keys, docsFragment, b.text)
			}
		}
	}
	t.Logf("YAML blocks: %v", counts)
	if counts["vantage config"] < 10 {
		t.Errorf("only %d vantage config blocks found in %d files: is the extraction broken?", counts["vantage config"], len(files))
	}
}
