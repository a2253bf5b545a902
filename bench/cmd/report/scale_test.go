package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const scaleOutput = `# scale-mode: small
# scale-list-bytes: 1000 100000 (populated in 1s)
# scale-list-bytes: 10000 1000000 (populated in 9s)
BenchmarkScaleList/n=1000/ours-2         	     100	   2000000 ns/op	  300000 B/op	    2000 allocs/op
BenchmarkScaleList/n=1000/raw-2          	     100	   1000000 ns/op	    9000 B/op	      70 allocs/op
BenchmarkScaleList/n=10000/ours-2        	      10	  20000000 ns/op	 3000000 B/op	   20000 allocs/op
BenchmarkScaleList/n=10000/raw-2         	      10	  10000000 ns/op	    9000 B/op	      70 allocs/op
BenchmarkScaleCallers/c=16/ours-2        	    1000	     10000 ns/op	    5000 gets/s	   1.5 fails/1kgets	    70 allocs/op
BenchmarkScaleCallers/c=16/official-2    	    1000	     20000 ns/op	    2500 gets/s	    80 allocs/op
BenchmarkScaleCallers/c=16/raw-tuned-2   	    1000	      9000 ns/op	    6000 gets/s	    60 allocs/op
BenchmarkScaleEndpoints/endpoints=3/ours-2 	    1000	    500000 ns/op	    6000 B/op	      70 allocs/op
BenchmarkScaleEndpoints/endpoints=3/raw-2  	    1000	    400000 ns/op	    5000 B/op	      60 allocs/op
BenchmarkScaleWatchers/watchers=100/own-2    	      10	  5000000 ns/op	   2 conns/watcher	   0 errors/watcher	   3000 get-p50-ns	  8192 heap-B/watcher	   1.5 goroutines/watcher	  4000000 p50-ns	  9000000 p99-ns
BenchmarkScaleWatchers/watchers=100/shared-2 	      10	  1000000 ns/op	   0.01 conns/watcher	   0 errors/watcher	   2000 get-p50-ns	  512 heap-B/watcher	   0.01 goroutines/watcher	  1000000 p50-ns	  3000000 p99-ns
--- FAIL: BenchmarkScaleWatchers/watchers=10000/own
BenchmarkScaleWatchers/watchers=10000/shared-2 	      1	  9000000 ns/op	   0.0001 conns/watcher	   0 errors/watcher	   2000 get-p50-ns	  1024 heap-B/watcher	   0.0002 goroutines/watcher	  5000000 p50-ns	  8000000 p99-ns
`

// TestScaleSection renders the scale section of a small run, splices it
// into a document and checks the figures, the ratios and the charts.
func TestScaleSection(t *testing.T) {
	dir := t.TempDir()
	r := parse(scaleOutput)
	if !hasScale(r) {
		t.Fatal("no scale results found")
	}
	sec, err := renderScaleSection(r, meta{count: 1, commit: "abc", raw: scaleOutput}, true, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 10000 | 1000000 | 20 | 10 | 2.00x | 3000000 | 3.00x | 9000 | 20000 |",
		"| 16 | 5000 | 2500 | 6000 | 0.83x | 2.00x | 1.50 | – | – |",
		"| 3 | 500 | 400 | 1.25x | 70 | 6000 |",
		"| 100 | own | 4 | 9 | 2 | 1.50 | 8 | 0 | 3 |",
		"| 100 | shared | 1 | 3 | 0.01 | 0.01 | 0.50 | 0 | 2 |",
		"| 10000 | shared | 5 | 8 | 0.0001 | 0.0002 | 1 | 0 | 2 |",
		"No figures for own at 10000",
		"The benchmark failed for own at 10000 in 1 round(s)",
		"![Recursive listing: time per call](bench-scale-list.svg)",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
	for _, f := range []string{"bench-scale-list.svg", "bench-scale-list-mem.svg", "bench-scale-callers.svg", "bench-scale-endpoints.svg", "bench-scale-watchers.svg"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	doc := "# B\n\n## Targets\n\nx\n"
	once, err := spliceScale(doc, sec)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := spliceScale(once, sec)
	if err != nil || twice != once || !strings.HasSuffix(once, "## Targets\n\nx\n") {
		t.Fatalf("splice not idempotent or misplaced (%v):\n%s", err, twice)
	}
	if oldScale(once) != sec {
		t.Errorf("oldScale does not return the section")
	}
}
