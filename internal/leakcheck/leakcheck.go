// Package leakcheck finds goroutines left running by tests.
package leakcheck

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ignored are stack fragments of goroutines that belong to the runtime or
// the testing framework, not to the code under test.
var ignored = []string{
	"testing.(*M).",
	"testing.tRunner",
	"testing.runTests",
	"testing.(*T).",
	"runtime.goexit0",
	"created by runtime.gc",
	"runtime.MHeap_Scavenger",
	"signal.signal_recv",
	"os/signal.loop",
	"runtime.ensureSigM",
	"runtime/trace.",
}

// stacks returns the stacks of every goroutine but the caller's, by ID.
func stacks() map[uint64]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		if len(buf) >= 64<<20 {
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := make(map[uint64]string)
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // the calling goroutine
		}
		var id uint64
		if rest, ok := strings.CutPrefix(g, "goroutine "); ok {
			if sp := strings.IndexByte(rest, ' '); sp > 0 {
				id, _ = strconv.ParseUint(rest[:sp], 10, 64)
			}
		}
		skip := false
		for _, ig := range ignored {
			if strings.Contains(g, ig) {
				skip = true
				break
			}
		}
		if !skip {
			out[id] = g
		}
	}
	return out
}

// Snapshot records the goroutines running now.
type Snapshot map[uint64]bool

// Take returns the goroutines running now, but the caller's.
func Take() Snapshot {
	s := Snapshot{}
	for id := range stacks() {
		s[id] = true
	}
	return s
}

// Check waits up to timeout for every goroutine started since before to
// end, and returns an error listing those that did not.
func Check(before Snapshot, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var leaked []string
		for id, g := range stacks() {
			if !before[id] {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leakcheck: %d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling for exit: there is no event to wait on
	}
}
