// Command faultcharts draws, from the fault suite's results
// (docs/resilience.json, written by TestFaultSuite in integration/faults),
// one latency-over-time chart per fault scenario: p50 and p99 per
// contender in windows of faults.BucketSeconds, the fault window shaded,
// failures marked. It writes them as SVG into -dir under the names
// docs/resilience.md links (faults.ChartFile). Runs recorded without a
// timeline are left out.
//
//	go -C bench run ./cmd/faultcharts -in ../docs/resilience.json -dir ../docs
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/etcdv2/client/bench/internal/charts"
	"github.com/etcdv2/client/integration/faults"
)

func main() {
	in := flag.String("in", "docs/resilience.json", "results JSON written by TestFaultSuite")
	dir := flag.String("dir", "docs", "directory to write the charts to")
	flag.Parse()
	n, err := run(*in, *dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faultcharts:", err)
		os.Exit(1)
	}
	fmt.Printf("faultcharts: %d chart(s) in %s\n", n, *dir)
}

// run draws the charts and returns how many it wrote.
func run(in, dir string) (int, error) {
	b, err := os.ReadFile(in)
	if err != nil {
		return 0, err
	}
	var r faults.Results
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("%s: %w", in, err)
	}
	var order []string
	byScenario := map[string][]faults.Run{}
	for _, x := range r.Runs {
		if len(x.Timeline) == 0 {
			continue
		}
		if _, ok := byScenario[x.Scenario]; !ok {
			order = append(order, x.Scenario)
		}
		byScenario[x.Scenario] = append(byScenario[x.Scenario], x)
	}
	for _, sc := range order {
		runs := byScenario[sc]
		t := charts.Timeline{Title: fmt.Sprintf("%s: latency over time (%d req/s)", sc, r.Load.Rate)}
		// Every run follows the same schedule; the first run's fault
		// window is shaded.
		t.FaultFrom, t.FaultTo = runs[0].FaultAt, runs[0].RestoreAt
		for _, x := range runs {
			w := charts.Window{Name: x.Contender}
			for _, bk := range x.Timeline {
				w.At = append(w.At, bk.At)
				w.P50 = append(w.P50, bk.P50)
				w.P99 = append(w.P99, bk.P99)
				w.Fails = append(w.Fails, bk.Fails)
			}
			t.Contenders = append(t.Contenders, w)
		}
		if err := charts.WriteTimeline(filepath.Join(dir, faults.ChartFile(sc)), t); err != nil {
			return 0, err
		}
	}
	return len(order), nil
}
