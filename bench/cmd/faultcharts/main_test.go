package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdv2/client/integration/faults"
)

// TestRun draws the chart of a recorded scenario and leaves out a run
// without a timeline.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	r := faults.Results{Load: faults.Load{Rate: 200}, Runs: []faults.Run{
		{Scenario: "baseline", Contender: "Sticky (default)"},
		{Scenario: "sigstop", Contender: "Sticky (default)", FaultAt: 0.5, RestoreAt: 1, Timeline: []faults.Bucket{
			{At: 0, Requests: 50, P50: 2, P99: 4}, {At: 0.25, Requests: 50, P50: 2, P99: 5},
			{At: 0.5, Requests: 50, Fails: 3, P50: 250, P99: 900}, {At: 0.75, Requests: 50, P50: 3, P99: 8},
		}},
		{Scenario: "sigstop", Contender: "official", FaultAt: 0.5, RestoreAt: 1, Timeline: []faults.Bucket{
			{At: 0, Requests: 50, P50: 3, P99: 6}, {At: 0.5, Requests: 50, Fails: 20, P50: 1000, P99: 5000},
		}},
	}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "r.json")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := run(in, dir)
	if err != nil || n != 1 {
		t.Fatalf("run: %d charts, %v", n, err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, faults.ChartFile("sigstop")))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"<svg", "sigstop", "Sticky (default)", "official", "fault"} {
		if !strings.Contains(string(svg), w) {
			t.Errorf("chart lacks %q", w)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, faults.ChartFile("baseline"))); !os.IsNotExist(err) {
		t.Errorf("a chart for a scenario without a timeline: %v", err)
	}
}
