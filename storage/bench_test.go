package storage

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// BenchmarkRecordRunAsync measures sustained run ingestion through the
// batched writer (the daemon's path), including the per-target bound.
func BenchmarkRecordRunAsync(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Logger: zerolog.Nop(), PruneInterval: -1, QueueSize: 1 << 16, RunsPerTarget: 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	steps, _ := json.Marshal([]Step{{Name: "home", URL: "https://www.shop.test/", Result: "success", Start: t0, Duration: 0.05,
		StatusCode: 200, Phases: &Phases{Connect: 0.001, Processing: 0.04, Transfer: 0.001}}})
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for !s.RecordRunAsync(Run{TargetKey: fmt.Sprint("check/direct/node", i%1000), Start: t0, Duration: 50 * time.Millisecond,
			Result: "success", Steps: steps}, nil) {
			time.Sleep(time.Millisecond) // the benchmark measures the writer, not drops
		}
	}
	if err := s.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}
