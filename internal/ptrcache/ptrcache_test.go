package ptrcache

import (
	"runtime"
	"testing"
	"time"
)

type cfg struct{ name string }

func TestHitMissAndCollect(t *testing.T) {
	var c Cache[cfg, string]
	a := &cfg{"a"}
	if _, ok := c.Get(a); ok {
		t.Fatal("hit on empty cache")
	}
	if got := c.Put(a, "plan-a"); got != "plan-a" {
		t.Fatal(got)
	}
	if got := c.Put(a, "other"); got != "plan-a" {
		t.Fatalf("second Put replaced the value: %q", got)
	}
	if v, ok := c.Get(a); !ok || v != "plan-a" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	b := &cfg{"b"}
	if _, ok := c.Get(b); ok {
		t.Fatal("hit for another object")
	}
	runtime.KeepAlive(a)
	a = nil
	// Once a is collected its entry is cleaned up.
	deadline := time.Now().Add(5 * time.Second)
	for c.Len() > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.Len(); n != 0 {
		t.Fatalf("%d entries left after the key was collected", n)
	}
	runtime.KeepAlive(b)
}

func BenchmarkGetFromLargeSlice(b *testing.B) {
	// Checks live in one large slice: the case weak.Make is slow for.
	items := make([]cfg, 5000)
	var c Cache[cfg, int]
	for i := range items {
		c.Put(&items[i], i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v, ok := c.Get(&items[i%len(items)]); !ok || v != i%len(items) {
			b.Fatal("miss")
		}
	}
}
