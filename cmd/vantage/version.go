package main

import (
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/version"
)

var versionOnce sync.Once

// fillVersion completes the build information for a binary built without
// the Makefile's -ldflags (go build, go install): the module version, and
// the commit time Go records as the build date. What cannot be known
// (who built it) says so rather than staying empty. Once, because tests
// run the CLI concurrently.
func fillVersion() {
	versionOnce.Do(func() {
		info, _ := debug.ReadBuildInfo()
		fallback := buildFallback(info)
		for _, f := range []struct {
			v   *string
			def string
		}{
			{&version.Version, fallback.version}, {&version.Branch, "unknown"},
			{&version.BuildUser, "unknown"}, {&version.BuildDate, fallback.date},
		} {
			if *f.v == "" {
				*f.v = f.def
			}
		}
	})
}

type fallbackInfo struct{ version, date string }

// buildFallback derives what debug.ReadBuildInfo can tell: the module
// version (a go install of a tag) and vcs.time, in the Makefile's date
// format.
func buildFallback(info *debug.BuildInfo) fallbackInfo {
	out := fallbackInfo{version: "(devel)", date: "unknown"}
	if info == nil {
		return out
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		out.version = strings.TrimPrefix(v, "v")
	}
	for _, s := range info.Settings {
		if s.Key != "vcs.time" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
			out.date = t.UTC().Format("20060102-15:04:05") + " (commit time)"
		}
	}
	return out
}
