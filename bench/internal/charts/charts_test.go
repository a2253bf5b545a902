package charts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrite draws both kinds of chart and checks that each is an SVG
// holding the title and the series names.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	curves := filepath.Join(dir, "c.svg")
	err := WriteCurves(curves, Curves{Title: "listing time", XLabel: "keys", YLabel: "ms", LogX: true, LogY: true,
		Series: []Series{{"ours", []Point{{1000, 0.5}, {10000, 5}, {0, 1}}}, {"raw", []Point{{1000, 0.1}, {10000, 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	tl := filepath.Join(dir, "t.svg")
	err = WriteTimeline(tl, Timeline{Title: "sigstop", FaultFrom: 0.5, FaultTo: 1, Contenders: []Window{
		{Name: "Sticky", At: []float64{0, 0.5, 1}, P50: []float64{1, 300, 2}, P99: []float64{3, 900, 4}, Fails: []int{0, 2, 0}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for path, words := range map[string][]string{curves: {"listing time", "ours", "raw"}, tl: {"sigstop", "Sticky", "fault"}} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, "<svg") {
			t.Errorf("%s: not an SVG", path)
		}
		for _, w := range words {
			if !strings.Contains(s, w) {
				t.Errorf("%s: no %q", path, w)
			}
		}
	}
	if err := WriteCurves(filepath.Join(dir, "e.svg"), Curves{Title: "empty", LogY: true, Series: []Series{{"x", []Point{{1, 0}}}}}); err == nil {
		t.Error("a chart without data: no error")
	}
}
