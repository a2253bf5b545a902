// Package leakcheck finds goroutines that a test left running.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Wait is how long Check waits for goroutines to end by themselves
// (connections closing, timers firing) before reporting them.
const Wait = 5 * time.Second

// ignored are functions whose goroutines belong to the runtime or to the
// testing package, or are shared pools that outlive a test by design.
var ignored = []string{
	"testing.Main(",
	"testing.tRunner(",
	"testing.(*M).",
	"testing.runFuzzing(",
	"testing.runFuzzTests(",
	"runtime.goexit",
	"created by runtime.gc",
	"runtime.MHeap_Scavenger",
	"signal.signal_recv",
	"sigterm.handler",
	"runtime_mcall",
	"(*loggingT).flushDaemon",
	"goroutine in C code",
	"os/signal.loop",
	"runtime.ensureSigM",
}

// Snapshot returns the identifiers of the goroutines running now.
func Snapshot() map[string]bool {
	ids := map[string]bool{}
	for _, g := range stacks() {
		ids[goroutineID(g)] = true
	}
	return ids
}

// Check waits up to wait for every goroutine not in before (and not
// ignored) to end, and returns an error listing those still running.
func Check(before map[string]bool, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := time.Millisecond
	for {
		leaked := interesting(before)
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			sort.Strings(leaked)
			return fmt.Errorf("leakcheck: %d goroutine(s) still running after %v:\n\n%s", len(leaked), wait, strings.Join(leaked, "\n\n"))
		}
		time.Sleep(delay) // polling: there is no event for "a goroutine ended"
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// M is the part of *testing.M that Run uses.
type M interface{ Run() int }

// Run runs the tests of m and then checks that they left no goroutine
// running. It returns the exit code for os.Exit.
func Run(m M) int {
	before := Snapshot()
	code := m.Run()
	if code != 0 {
		return code
	}
	if err := Check(before, Wait); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func interesting(before map[string]bool) []string {
	var out []string
	for _, g := range stacks() {
		if before[goroutineID(g)] || isIgnored(g) {
			continue
		}
		out = append(out, g)
	}
	return out
}

func isIgnored(g string) bool {
	// The first goroutine listed is the caller's own.
	for _, s := range ignored {
		if strings.Contains(g, s) {
			return true
		}
	}
	return false
}

func stacks() []string {
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
	gs := strings.Split(string(buf), "\n\n")
	// Drop the goroutine calling stacks.
	if len(gs) > 0 {
		gs = gs[1:]
	}
	return gs
}

// goroutineID returns "goroutine N" from a stack dump entry.
func goroutineID(g string) string {
	line, _, _ := strings.Cut(g, "\n")
	if i := strings.Index(line, " ["); i > 0 {
		return line[:i]
	}
	return line
}
