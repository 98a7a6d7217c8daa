package httpprobe

import (
	"sync"
	"testing"
	"time"

	"github.com/vantage-monitoring/vantage/checks"
)

func TestPlanCacheKeepsUsedPlansAndDropsOldChecks(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	pc := &planCache{now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	// A config's checks live in one slice, as the loader makes them.
	cfg := make([]checks.Check, 3)
	a, b, c := &cfg[0], &cfg[1], &cfg[2]
	pa, pb := &plan{}, &plan{}
	if got := pc.put(a, pa); got != pa {
		t.Fatal("put returned another plan")
	}
	if got := pc.put(a, &plan{}); got != pa {
		t.Fatal("a second put replaced the plan")
	}
	pc.put(b, pb)
	if pl, ok := pc.get(a); !ok || pl != pa {
		t.Fatal("miss for a")
	}
	if _, ok := pc.get(c); ok {
		t.Fatal("hit for a check never put")
	}
	// a is used every generation, b (its config replaced) never again.
	for range 3 {
		advance(planGeneration)
		if pl, ok := pc.get(a); !ok || pl != pa {
			t.Fatal("a used every generation was dropped")
		}
	}
	if _, ok := pc.get(b); ok {
		t.Error("b unused for three generations is still cached")
	}
	if n := pc.len(); n != 1 {
		t.Errorf("%d checks held, want 1", n)
	}
}

// BenchmarkPutManyChecksOfOneConfig is the start of a daemon with many
// checks: one plan per check, all checks in one slice. It was quadratic
// with a weak pointer per check.
func BenchmarkPutManyChecksOfOneConfig(b *testing.B) {
	cfg := make([]checks.Check, 20000)
	for b.Loop() {
		var pc planCache
		for i := range cfg {
			pc.put(&cfg[i], &plan{})
		}
	}
}
