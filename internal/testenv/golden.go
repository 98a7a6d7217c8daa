package testenv

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is the one way golden files are rewritten: `go test ./pkg -update`.
// A flag is package state, but the testing package's flags are too: it is
// read only by Golden.
var update = flag.Bool("update", false, "rewrite testdata golden files")

// Golden compares got with testdata/name in the test's package directory.
// With -update it writes got there first; check the diff before committing.
func Golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs (run with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
