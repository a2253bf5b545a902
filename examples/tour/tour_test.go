package main

import (
	"bytes"
	"context"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestTour runs the whole tour against its private etcd server, checks that
// every step said what it did, and that nothing kept running afterwards.
func TestTour(t *testing.T) {
	t.Setenv("ETCDCTL_ENDPOINTS", "") // never touch a real cluster from a test
	before := goroutineIDs()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, &out, nil)
	t.Log("output of the tour:\n" + out.String())
	if err != nil {
		t.Fatalf("run returned %v", err)
	}

	for _, want := range []string{
		"starting a private etcd server",
		"Connected to etcd 3.5.",
		"== 1. Set and get ==", `Set /tour/greeting to "hello"`, "IsKeyNotFound(err) is true",
		"== 2. Compare-and-swap ==", `action "compareAndSwap"`, "fails: error 101",
		"== 3. Create ==", `action "create"`, "105",
		"== 4. TTL: keys that expire ==", "ttl 1,", `reported action "expire"`,
		"== 5. In-order keys ==", "/tour/queue/0000", `"third job"`,
		"== 6. Recursive listing ==", "    db/\n", `      port = "5432"`,
		"== 7. Watch ==", `set /tour/status = "running" (was "starting"), modifiedIndex`,
		`set /tour/status = "done"`, "Resuming with AfterIndex",
		"Cleaned up: deleted /tour",
		"Stopped the private etcd server.",
		"All 7 steps done in",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output does not contain %q", want)
		}
	}

	// Leak check. The tour's own goroutines (the watcher, the client's
	// connections) and the embedded etcd's all end by Close/Stop, so any
	// goroutine started during the test must be gone shortly after; give
	// stragglers (connections being torn down) a bounded time. No goroutine
	// of the embedded etcd 3.5.35 survives Stop, so none is exempted.
	var leaked []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		leaked = leaked[:0]
		for id, stack := range goroutineIDs() {
			if _, ok := before[id]; !ok && !strings.Contains(stack, "goroutineIDs") {
				leaked = append(leaked, stack)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, bounded by deadline
	}
	for _, stack := range leaked {
		t.Errorf("goroutine still running after the tour:\n%s", stack)
	}
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)

// goroutineIDs returns the stack of every goroutine, by goroutine id.
func goroutineIDs() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if m := goroutineHeader.FindStringSubmatch(g); m != nil {
			stacks[m[1]] = g
		}
	}
	return stacks
}
