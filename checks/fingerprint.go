package checks

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"reflect"
	"slices"
)

// Fingerprint is a stable hash of the check's loaded definition (defaults
// applied, positions excluded), so a reload can tell an unchanged check and
// keep its state. Secret values take part, so a rotated password counts as
// a change; the hash itself reveals nothing.
func (c *Check) Fingerprint() string { return fingerprint(c) }

// Fingerprint is a stable hash of the path's definition, positions excluded.
func (p *Path) Fingerprint() string { return fingerprint(p) }

func fingerprint(v any) string {
	h := sha256.New()
	hashValue(h, reflect.ValueOf(v))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// hashValue feeds an unambiguous encoding of v into h: every value is
// prefixed by its kind and length where variable, fields by their name.
func hashValue(h hash.Hash, v reflect.Value) {
	var buf [8]byte
	writeInt := func(i uint64) {
		binary.BigEndian.PutUint64(buf[:], i)
		h.Write(buf[:])
	}
	writeStr := func(s string) {
		writeInt(uint64(len(s)))
		h.Write([]byte(s))
	}
	if !v.IsValid() {
		h.Write([]byte{0})
		return
	}
	h.Write([]byte{byte(v.Kind())})
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			h.Write([]byte{0})
			return
		}
		h.Write([]byte{1})
		hashValue(h, v.Elem())
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Type == posType || !f.IsExported() {
				continue
			}
			writeStr(f.Name)
			hashValue(h, v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			h.Write([]byte{0})
			return
		}
		writeInt(uint64(v.Len()))
		for i := range v.Len() {
			hashValue(h, v.Index(i))
		}
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return compareKeys(a, b)
		})
		writeInt(uint64(len(keys)))
		for _, k := range keys {
			hashValue(h, k)
			hashValue(h, v.MapIndex(k))
		}
	case reflect.String:
		writeStr(v.String())
	case reflect.Bool:
		if v.Bool() {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		writeInt(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		writeInt(v.Uint())
	case reflect.Float32, reflect.Float64:
		writeInt(math.Float64bits(v.Float()))
	default:
		// Funcs, channels: not part of a definition.
	}
}

func compareKeys(a, b reflect.Value) int {
	if a.Kind() == reflect.String && b.Kind() == reflect.String {
		switch {
		case a.String() < b.String():
			return -1
		case a.String() > b.String():
			return 1
		}
		return 0
	}
	switch {
	case a.Kind() == reflect.Int && a.Int() < b.Int():
		return -1
	case a.Kind() == reflect.Int && a.Int() > b.Int():
		return 1
	}
	return 0
}
