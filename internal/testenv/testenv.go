// Package testenv decides what a test does when this machine lacks a part
// it needs (Chromium, Alertmanager, promtool, root for network
// namespaces): locally it skips, under CI=true it fails, because CI must
// never pass by not running (`make test` installs every part). Imported
// only by tests.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether missing parts must fail the run.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips tb, or fails it under CI=true, saying what is missing.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		tb.Fatal(msg + " (CI=true: `make test` installs it)")
	}
	tb.Skip(msg)
}

// Binary returns path when it exists; else Missing names the Debian
// package that provides it.
func Binary(tb testing.TB, path, pkg string) string {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(tb, "%s not installed (Debian package %s)", path, pkg)
	}
	return path
}

// LookPath finds name on PATH; else Missing names the Debian package.
func LookPath(tb testing.TB, name, pkg string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "%s not found (Debian package %s): %v", name, pkg, err)
	}
	return p
}

// RootAndIP is what tests that build network namespaces need.
func RootAndIP(tb testing.TB) {
	tb.Helper()
	LookPath(tb, "ip", "iproute2")
	if os.Geteuid() != 0 {
		Missing(tb, "network namespaces need root")
	}
}
