package main

import (
	"math"
	"strings"
	"testing"
)

const sample = `# etcd-version: {"etcdserver":"3.5.35","etcdcluster":"3.5.0"}
# loadavg-before: 1.00 2.00 3.00
BenchmarkGet/ours-2         	    5000	    200000 ns/op	    5550 B/op	      60 allocs/op
BenchmarkGet/ours-2         	    5000	    100000 ns/op	    5550 B/op	      60 allocs/op
BenchmarkGet/ours-2         	    5000	    150000 ns/op	    5550 B/op	      60 allocs/op
BenchmarkGet/raw-2          	    5000	    150000 ns/op	    4900 B/op	      63 allocs/op
BenchmarkGetParallel/c=64/ours-2   	    9266	     43240 ns/op	         0 dials/1kgets	     30000 gets/s	    6026 B/op	      89 allocs/op
BenchmarkGetParallel/c=64/raw-2    	    6117	     70939 ns/op	        43.98 dials/1kgets	     20000 gets/s	    6260 B/op	      68 allocs/op
BenchmarkGetParallel/c=64/official-2    	    6117	     70939 ns/op	        43.98 dials/1kgets	     10000 gets/s	    6260 B/op	      68 allocs/op
`

func TestParseAndMedian(t *testing.T) {
	r := parse(sample)
	if got := r.median("Get", "ours", "ns/op"); got != 150000 {
		t.Errorf("median ns/op = %v, want 150000", got)
	}
	if got := r.median("GetParallel/c=64", "raw", "dials/1kgets"); got != 43.98 {
		t.Errorf("dials = %v", got)
	}
	if got := r.median("Get", "official", "ns/op"); !math.IsNaN(got) {
		t.Errorf("missing contender gives %v, want NaN", got)
	}
	if r.meta["loadavg-before"][0] != "1.00 2.00 3.00" {
		t.Errorf("meta = %v", r.meta)
	}
}

func TestRender(t *testing.T) {
	doc := render(parse(sample), meta{goVersion: "go1.x", official: "v2.305.35", commit: "abc", date: "today", count: 3, raw: sample})
	for _, want := range []string{
		"| Get latency (µs) | 150 | – | 150 | 1.00x | – |",
		"| Sequential Get within 1.05x of raw net/http | **met** | ours/raw = 1.00x |",
		"| Sequential Get: at most 70 allocations | **met** | 60 allocs/op |",
		"| 64 callers: at least 3x the official client's Gets/s (its defaults) | **met** |",
		"| Watch latency no worse than the official client's (p50 and p99) | not measured | – |",
		"etcd: 3.5.35",
		"median of 3 rounds",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(doc, "columns are empty") {
		t.Error("report says ours is missing")
	}
}
