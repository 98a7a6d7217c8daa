package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/schema"
)

var docsWithConfigs = []string{
	"../docs/deployment.md",
	"../docs/migrating-from-blackbox-exporter.md",
	"../docs/writing-checks.md",
}

var yamlBlockRE = regexp.MustCompile("(?ms)^[ \t]*```yaml[ \t]*\n(.*?)^[ \t]*```")
var checksKeyRE = regexp.MustCompile(`(?m)^checks:`)

// yamlBlocks returns the ```yaml blocks of a markdown file, de-indented
// (blocks inside list items are indented), with their line numbers.
func yamlBlocks(t *testing.T, file string) (blocks []string, lines []int) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, m := range yamlBlockRE.FindAllStringSubmatchIndex(text, -1) {
		fence := text[m[0]:m[1]]
		indent := len(fence) - len(strings.TrimLeft(fence, " \t"))
		var b strings.Builder
		for _, l := range strings.SplitAfter(text[m[2]:m[3]], "\n") {
			if len(l) >= indent && strings.TrimSpace(l[:indent]) == "" {
				l = l[indent:]
			}
			b.WriteString(l)
		}
		blocks = append(blocks, b.String())
		lines = append(lines, strings.Count(text[:m[0]], "\n")+1)
	}
	return blocks, lines
}

// Every vantage config shown in the docs loads (with only the defaults of
// its ${VAR:-default} references) and passes the JSON Schema; every other
// YAML block is at least valid YAML.
func TestDocsExamplesAreValid(t *testing.T) {
	s := schema.Generate(kinds.Registry())
	configs := 0
	for _, file := range docsWithConfigs {
		blocks, lines := yamlBlocks(t, file)
		if len(blocks) == 0 {
			t.Errorf("%s has no yaml blocks", file)
		}
		for i, b := range blocks {
			where := file + ":" + strconv.Itoa(lines[i])
			var doc any
			if err := yaml.Unmarshal([]byte(b), &doc); err != nil {
				t.Errorf("%s: invalid YAML: %v", where, err)
				continue
			}
			if !checksKeyRE.MatchString(b) {
				continue
			}
			configs++
			// A file in a scratch directory, so include globs match nothing.
			name := filepath.Join(t.TempDir(), "vantage.yaml")
			cfg, err := kinds.Registry().Parse([]byte(b), name, nil)
			if err != nil {
				t.Errorf("%s: example config does not load:\n%v\n---\n%s", where, err, b)
				continue
			}
			if len(cfg.Checks) == 0 {
				t.Errorf("%s: no checks", where)
			}
			for _, w := range cfg.Warnings {
				if !strings.Contains(w.Msg, "matches no files") {
					t.Errorf("%s: warning: %v", where, w)
				}
			}
			if err := s.Validate(doc); err != nil {
				t.Errorf("%s: example config fails the JSON Schema:\n%v", where, err)
			}
		}
	}
	if configs < 10 {
		t.Errorf("only %d example configs found in the docs; is the extractor broken?", configs)
	}
}
