package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestChildMode(t *testing.T) {
	const name = "VANTAGE_TESTENV_CHILD_TEST"
	if _, child, err := ChildMode(name); child || err != nil {
		t.Fatalf("unset: child %v, err %v", child, err)
	}
	// What a parent passes, seen from its child.
	t.Setenv(name, fmt.Sprintf("%d:some/dir", os.Getppid()))
	if v, child, err := ChildMode(name); !child || err != nil || v != "some/dir" {
		t.Errorf("set by the parent: %q, child %v, err %v", v, child, err)
	}
	// Leaked: set by some other process (here: this one, for its own
	// children), or by hand without a pid.
	for _, leaked := range []string{strings.TrimPrefix(ChildEnv(name, "x"), name+"="), "1", "/tmp/x"} {
		t.Setenv(name, leaked)
		if _, child, err := ChildMode(name); child || err == nil || !strings.Contains(err.Error(), "leaked") {
			t.Errorf("%s=%q: child %v, err %v, want a leak error", name, leaked, child, err)
		}
	}
}
