package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Some tests re-run their own binary as a child (as another user, inside
// a network namespace) and tell it so through an environment variable. A
// child returns early or does something other than the test, so the
// variable leaking into a normal run (exported in a shell, a CI step)
// would turn the test into one that passes without testing anything. The
// variable therefore carries the parent's process id, and a process whose
// parent is not that one is not a child: ChildMode says so loudly.

// ChildEnv is the environment entry (NAME=…) that starts a child of this
// process in child mode name, passing value.
func ChildEnv(name, value string) string {
	return fmt.Sprintf("%s=%d:%s", name, os.Getpid(), value)
}

// ChildMode reports whether this process is a child its parent started
// with ChildEnv(name, value), and value. err is set when name is in the
// environment but this process is not that child (the variable leaked):
// the caller must fail on it, never run as a child or skip.
func ChildMode(name string) (value string, child bool, err error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return "", false, nil
	}
	pid, val, found := strings.Cut(v, ":")
	if n, perr := strconv.Atoi(pid); !found || perr != nil || n != os.Getppid() {
		return "", false, fmt.Errorf("%s=%q is set, but this process (parent %d) was not started as that test's child: "+
			"the variable leaked into the environment; unset it", name, v, os.Getppid())
	}
	return val, true, nil
}
