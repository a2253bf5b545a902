// Package leakcheck finds goroutines that a test left running.
//
// A package's TestMain calls Main instead of os.Exit(m.Run()): after the
// tests pass it waits a bounded time for goroutines started by the tests to
// end, and fails the run, listing their stacks, if any remain.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Stacks returns the stack of every goroutine, one string each.
func Stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")
}

// Goroutines returns the stacks of the goroutines that are not part of the
// runtime or the test harness, sorted.
func Goroutines() []string {
	var out []string
	for _, g := range Stacks() {
		if interesting(g) {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

func interesting(stack string) bool {
	lines := strings.SplitN(stack, "\n", 2)
	if len(lines) < 2 {
		return false
	}
	body := lines[1]
	if strings.Contains(lines[0], "[running]") && strings.Contains(body, "leakcheck.Goroutines") {
		return false
	}
	for _, s := range []string{"testing.Main(", "testing.tRunner(", "testing.(*M).", "testing.runFuzzing(", "testing.(*F).Fuzz",
		"created by runtime.gc", "os/signal.signal_recv", "runtime.ensureSigM", "runtime/trace.Start", "testing.(*T).Run(", "created by testing."} {
		if strings.Contains(body, s) {
			return false
		}
	}
	return strings.TrimSpace(body) != ""
}

// Check waits up to timeout for the goroutines that are not in the
// baseline to end and returns an error listing those that remain.
func Check(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		left := Goroutines()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) || i >= 1000 {
			return fmt.Errorf("leakcheck: %d goroutine(s) left running:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
		// Goroutines that are ending need a moment of scheduler time; there
		// is no event to wait for, so this is a bounded poll.
		time.Sleep(10 * time.Millisecond)
	}
}

// Main runs the tests and then fails the run if goroutines are left over.
// Use it from TestMain: func TestMain(m *testing.M) { leakcheck.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Check(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
