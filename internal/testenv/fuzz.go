package testenv

import (
	"fmt"
	"time"
)

// FuzzInputDeadline is how long one fuzz input may run before it counts as
// a hang. Go's fuzzer has no such limit: a worker stuck on one input just
// stops reporting execs until -fuzztime ends, and the run passes.
const FuzzInputDeadline = 30 * time.Second

// HangGuard makes an input that runs longer than FuzzInputDeadline crash
// the fuzz worker, so the fuzzer records it under testdata/fuzz like any
// other failing input. Use it as `defer testenv.HangGuard()()` first
// thing in the function given to f.Fuzz.
func HangGuard() (stop func()) {
	t := time.AfterFunc(FuzzInputDeadline, func() {
		panic(fmt.Sprintf("fuzz input still running after %s: a hang", FuzzInputDeadline))
	})
	return func() { t.Stop() }
}
