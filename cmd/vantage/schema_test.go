package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/vantage-monitoring/vantage/kinds"
	"github.com/vantage-monitoring/vantage/schema"
)

// `vantage schema` prints exactly the generated schema, which is what
// docs/config.schema.json holds.
func TestSchemaCommand(t *testing.T) {
	code, out, errOut := vantage(t, "schema")
	if code != 0 {
		t.Fatalf("vantage schema: exit %d, stderr:\n%s", code, errOut)
	}
	want, err := schema.JSON(kinds.Registry())
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatalf("vantage schema output differs from schema.JSON(kinds.Registry())")
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if doc["$schema"] != schema.Draft {
		t.Errorf("$schema = %v, want %s", doc["$schema"], schema.Draft)
	}
	checked, err := os.ReadFile("../../docs/config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(checked) != out {
		t.Errorf("docs/config.schema.json is stale; update it with: go run ./cmd/vantage schema > docs/config.schema.json")
	}
}
