package main

import (
	"os"
	"path/filepath"

	"github.com/vantage-monitoring/vantage/storage"
)

// demoDataDir is where `vantage demo` keeps its database and artifacts,
// under its --storage.path (which also holds its config and CA).
const demoDataDir = "data"

// timelineStorageDir is the directory `vantage timeline` opens: dir itself
// when it holds the database, else dir's demo data directory when that one
// does, so the demo's own --storage.path works for the timeline too. When
// neither holds one, dir is returned and opening it names it.
func timelineStorageDir(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, storage.FileName)); err == nil {
		return dir
	}
	sub := filepath.Join(dir, demoDataDir)
	if _, err := os.Stat(filepath.Join(sub, storage.FileName)); err == nil {
		return sub
	}
	return dir
}
