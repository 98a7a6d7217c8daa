// Package ptrcache caches values derived from config objects, keyed by the
// object's identity, without keeping the object alive: when a reload drops
// a config, its entries go with it.
//
// Lookups cost a map load and a weak-pointer read. weak.Make is called only
// when an entry is stored: it scans the runtime's list of weak pointers and
// cleanups of the key's span, so storing one entry per element of a large
// slice (a config's checks all live in one) is quadratic in its length.
// Key it by objects allocated one by one (a check's tls block); the http
// prober caches plans per check without weak pointers for that reason.
package ptrcache

import (
	"runtime"
	"sync"
	"unsafe"
	"weak"
)

// Cache maps *K to V. Safe for concurrent use. The zero value is ready.
type Cache[K, V any] struct {
	m sync.Map // uintptr -> *entry[K, V]
}

type entry[K, V any] struct {
	wp weak.Pointer[K]
	v  V
}

type cleanupArg[K, V any] struct {
	key uintptr
	e   *entry[K, V]
}

// Get returns the value stored for k. An address reused by a new object
// after the old one was collected is not a hit: the weak pointer then
// no longer points at k.
func (c *Cache[K, V]) Get(k *K) (V, bool) {
	if v, ok := c.m.Load(uintptr(unsafe.Pointer(k))); ok {
		e := v.(*entry[K, V])
		if e.wp.Value() == k {
			return e.v, true
		}
	}
	var zero V
	return zero, false
}

// Put stores v for k, unless a value is already there, and returns the
// value in the cache.
func (c *Cache[K, V]) Put(k *K, v V) V {
	key := uintptr(unsafe.Pointer(k))
	e := &entry[K, V]{wp: weak.Make(k), v: v}
	for {
		old, loaded := c.m.LoadOrStore(key, e)
		if !loaded {
			break
		}
		oe := old.(*entry[K, V])
		if oe.wp.Value() == k {
			return oe.v
		}
		// A stale entry of a collected object at the same address.
		c.m.CompareAndDelete(key, old)
	}
	runtime.AddCleanup(k, func(a cleanupArg[K, V]) { c.m.CompareAndDelete(a.key, a.e) }, cleanupArg[K, V]{key, e})
	return v
}

// Len counts entries (for tests).
func (c *Cache[K, V]) Len() int {
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	return n
}
