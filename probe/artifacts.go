package probe

import (
	"path"
	"strings"
	"time"
)

// ArtifactsDir is the directory under the storage directory where probes
// write per-run files.
const ArtifactsDir = "artifacts"

// artifactTimeLayout sorts lexically in time order and is safe in file names.
const artifactTimeLayout = "20060102T150405.000Z"

// ArtifactStem is where the files of one run go, relative to the storage
// directory and without extension: artifacts/<check>/<start>-<path>-<node>.
// The storage serves a run only files with its own stem, so a stored path
// that was tampered with cannot reach anything else.
func ArtifactStem(check, pathName, node string, start time.Time) string {
	return path.Join(ArtifactsDir, SafeName(check), start.UTC().Format(artifactTimeLayout)+ArtifactSuffix(pathName, node))
}

// ArtifactSuffix ends the stem of every run of one target.
func ArtifactSuffix(pathName, node string) string {
	return "-" + SafeName(pathName) + "-" + SafeName(node)
}

// ArtifactTimeLen is the length of the time at the start of a stem's name.
const ArtifactTimeLen = len(artifactTimeLayout)

// SafeName keeps file names to [A-Za-z0-9._-].
func SafeName(s string) string {
	if s == "" {
		return "none"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}
