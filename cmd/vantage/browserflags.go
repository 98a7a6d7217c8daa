package main

import (
	"github.com/alecthomas/kingpin/v2"

	"github.com/vantage-monitoring/vantage/probe/browser"
)

// browserFlags are the browser kind's command-line options.
type browserFlags struct {
	path          *string
	maxConcurrent *int
	noSandbox     *bool
}

func addBrowserFlags(c *kingpin.CmdClause, rules *flagRules) browserFlags {
	f := browserFlags{
		path:          c.Flag("browser.path", "Chromium binary for browser checks.").Default(browser.DefaultExecPath).String(),
		maxConcurrent: c.Flag("browser.max-concurrent", "Maximum number of browser runs at once.").Default("2").Int(),
		noSandbox:     c.Flag("browser.no-sandbox", "Run Chromium without its sandbox even as a non-root user (for container runtimes without user namespaces; as root it is always off).").Bool(),
	}
	rules.atLeast("browser.max-concurrent", f.maxConcurrent, 1)
	return f
}

// options builds browser.Options; artifacts go under storage (empty: none).
func (f browserFlags) options(storage string) *browser.Options {
	return &browser.Options{ExecPath: *f.path, MaxConcurrent: *f.maxConcurrent, StorageDir: storage, NoSandbox: *f.noSandbox}
}
