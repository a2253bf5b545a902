package main

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/etcdv2/client/bench/internal/charts"
)

// Markers around the scale section, so that a scale run can replace it.
const (
	scaleBegin = "<!-- scale-begin -->"
	scaleEnd   = "<!-- scale-end -->"
)

// hasScale reports whether r holds results of the scale benchmarks.
func hasScale(r *results) bool {
	for g := range r.samples {
		if strings.HasPrefix(g, "Scale") {
			return true
		}
	}
	return false
}

// scaleSizes returns the sizes n of the groups prefix+"n" in r, sorted.
func scaleSizes(r *results, prefix string) []int {
	var ns []int
	for g := range r.samples {
		if s, ok := strings.CutPrefix(g, prefix); ok {
			if n, err := strconv.Atoi(s); err == nil {
				ns = append(ns, n)
			}
		}
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}

// renderScaleSection renders the scale tables between the markers and,
// when chartDir is set, writes their charts there as SVG (linked from the
// section by the file name relative to the markdown file, which is in
// chartDir).
func renderScaleSection(r *results, m meta, own bool, chartDir string) (string, error) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n## How cost grows: scale curves\n\n", scaleBegin)
	w("`BenchmarkScale*` (`bench/scale_test.go`), run by `bench/run.sh scale`. They run only when `ETCDV2_BENCH_SCALE` is set: ")
	w("`=1` runs every size (listings of 1k, 10k, 100k keys, plus 1M with `ETCDV2_BENCH_1M=1`; 1 to 1024 callers; 3, 5 and 9 endpoints; 1, 100 and 10,000 watchers), ")
	w("`=small` the smaller sizes of each curve. ")
	if own {
		load := ""
		if v := r.meta["loadavg-before"]; len(v) > 0 {
			load = "load average " + v[0]
			if a := r.meta["loadavg-after"]; len(a) > 0 {
				load += " before, " + a[0] + " after"
			}
		}
		w("These figures come from a run of their own on %s, %s round(s), at commit `%s` (mode `%s`), on the shared 2-core machine (%s), ",
			m.date, countText(m.count), m.commit, strings.Join(r.meta["scale-mode"], " + "), load)
		w("with the etcd members, the client and other people's work on the same two cores: **they show the shape of each curve, not what the client costs on a machine of its own**; ")
		w("compare the columns of one table with each other, not with the tables above.\n\n")
	}

	chart := func(name string, c charts.Curves) {
		if chartDir == "" {
			return
		}
		if err := charts.WriteCurves(filepath.Join(chartDir, name), c); err != nil {
			w("(chart %s not drawn: %v)\n\n", name, err)
			return
		}
		w("![%s](%s)\n\n", c.Title, name)
	}

	// Listings.
	if ns := scaleSizes(r, "ScaleList/n="); len(ns) > 0 {
		w("### Recursive listing of n keys\n\n")
		w("A recursive Get of a directory of n 32-byte keys on the leader: ours decodes it into its `Response`; raw only reads the bytes. B/op is what the call allocated.\n\n")
		w("Raw reads the body with `io.ReadAll`, whose buffer grows by doubling: its B/op is that buffer's growth.\n\n")
		w("| keys | body bytes | ours ms | raw ms | ours / raw | ours B/op | ours B/op / body | raw B/op | ours allocs/op |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		bodies := listBodies(r)
		var tOurs, tRaw, mem []charts.Point
		for _, n := range ns {
			g := "ScaleList/n=" + strconv.Itoa(n)
			o, rw := r.median(g, "ours", "ns/op"), r.median(g, "raw", "ns/op")
			ob := r.median(g, "ours", "B/op")
			body := bodies[n]
			w("| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, format(body), format(o/1e6), format(rw/1e6), ratioText(o/rw),
				format(ob), ratioText(ob/body), format(r.median(g, "raw", "B/op")), format(r.median(g, "ours", "allocs/op")))
			tOurs = append(tOurs, charts.Point{X: float64(n), Y: o / 1e6})
			tRaw = append(tRaw, charts.Point{X: float64(n), Y: rw / 1e6})
			mem = append(mem, charts.Point{X: float64(n), Y: ob / body})
		}
		w("\n")
		chart("bench-scale-list.svg", charts.Curves{Title: "Recursive listing: time per call", XLabel: "keys", YLabel: "ms", LogX: true, LogY: true,
			Series: []charts.Series{{Name: "ours", Points: tOurs}, {Name: "raw (read the bytes)", Points: tRaw}}})
		chart("bench-scale-list-mem.svg", charts.Curves{Title: "Recursive listing: bytes allocated per body byte", XLabel: "keys", YLabel: "B/op / body bytes", LogX: true,
			Series: []charts.Series{{Name: "ours", Points: mem}}})
	}

	// Callers.
	if ns := scaleSizes(r, "ScaleCallers/c="); len(ns) > 0 {
		w("### Gets/s against concurrent callers\n\n")
		w("n goroutines share one client and Get one 32-byte key from the leader; ours and official with their defaults, raw-tuned with `MaxIdleConnsPerHost` = n.\n\n")
		w("Gets/s counts successful Gets; failed ones (per 1000 Gets) are in the last columns.\n\n")
		w("| callers | ours | official | raw-tuned | ours / raw-tuned | ours / official | fails/1k ours | official | raw-tuned |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		series := map[string][]charts.Point{}
		for _, n := range ns {
			g := "ScaleCallers/c=" + strconv.Itoa(n)
			o, f, rw := r.median(g, "ours", "gets/s"), r.median(g, "official", "gets/s"), r.median(g, "raw-tuned", "gets/s")
			w("| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, format(o), format(f), format(rw), ratioText(o/rw), ratioText(o/f),
				format(r.median(g, "ours", "fails/1kgets")), format(r.median(g, "official", "fails/1kgets")), format(r.median(g, "raw-tuned", "fails/1kgets")))
			for who, v := range map[string]float64{"ours": o, "official": f, "raw-tuned": rw} {
				series[who] = append(series[who], charts.Point{X: float64(n), Y: v})
			}
		}
		w("\n")
		chart("bench-scale-callers.svg", charts.Curves{Title: "Get throughput against callers", XLabel: "callers", YLabel: "Gets/s", LogX: true,
			Series: []charts.Series{{Name: "ours", Points: series["ours"]}, {Name: "official", Points: series["official"]}, {Name: "raw-tuned", Points: series["raw-tuned"]}}})
	}

	// Endpoints.
	if ns := scaleSizes(r, "ScaleEndpoints/endpoints="); len(ns) > 0 {
		w("### A Get against the number of endpoints\n\n")
		w("Each size has its own cluster of that many members; ours is configured with every member, raw talks to the leader.\n\n")
		w("| endpoints | ours µs | raw µs | ours / raw | ours allocs/op | ours B/op |\n|---:|---:|---:|---:|---:|---:|\n")
		var po, pr []charts.Point
		for _, n := range ns {
			g := "ScaleEndpoints/endpoints=" + strconv.Itoa(n)
			o, rw := r.median(g, "ours", "ns/op"), r.median(g, "raw", "ns/op")
			w("| %d | %s | %s | %s | %s | %s |\n", n, format(o/1e3), format(rw/1e3), ratioText(o/rw), format(r.median(g, "ours", "allocs/op")), format(r.median(g, "ours", "B/op")))
			po = append(po, charts.Point{X: float64(n), Y: o / 1e3})
			pr = append(pr, charts.Point{X: float64(n), Y: rw / 1e3})
		}
		w("\n")
		chart("bench-scale-endpoints.svg", charts.Curves{Title: "Sequential Get against endpoints", XLabel: "endpoints (cluster members)", YLabel: "µs per Get",
			Series: []charts.Series{{Name: "ours", Points: po}, {Name: "raw (leader)", Points: pr}}})
	}

	// Watchers.
	if ns := watcherSizes(r); len(ns) > 0 {
		w("### Active watchers\n\n")
		w("n watchers of one key on one client of ours, connected to a follower; Sets on the leader. Each size runs twice in the same run: ")
		w("**own**, every watcher with a long poll of its own (`WatcherOptions.OwnPoll`), and **shared**, the default, where watchers of one key share one poll (see `Watcher`). ")
		w("Latency is from the start of the Set to the event's arrival, over every delivery to every watcher. ")
		w("Per watcher: connections dialed, goroutines (besides the caller's own) and heap bytes the watchers added once all were waiting, and errors their Next returned (a watcher calls Next again after one). Get p50: a Get on the same client with the watchers active. ")
		w("With one watcher the connection count is 0 because its poll reuses the idle connection of the client's first Get, ")
		w("and heap differences below a few KiB are below what this measurement resolves (they can come out negative).\n\n")
		w("| watchers | poll | event p50 ms | event p99 ms | conns / watcher | goroutines / watcher | heap KiB / watcher | errors / watcher | Get p50 µs |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
		lat := map[string][]charts.Point{}
		var missing []string
		for _, n := range ns {
			for _, mode := range []string{"own", "shared"} {
				med := func(u string) float64 { return watcherMedian(r, n, mode, u) }
				if math.IsNaN(med("p50-ns")) {
					if _, ok := r.samples[watcherGroup(n)]; ok || mode == "own" {
						missing = append(missing, fmt.Sprintf("%s at %d", mode, n))
					}
					continue
				}
				w("| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, mode, format(med("p50-ns")/1e6), format(med("p99-ns")/1e6), formatSmall(med("conns/watcher")),
					formatSmall(med("goroutines/watcher")), format(med("heap-B/watcher")/1024), format(med("errors/watcher")), format(med("get-p50-ns")/1e3))
				lat[mode+" p50"] = append(lat[mode+" p50"], charts.Point{X: float64(n), Y: med("p50-ns") / 1e6})
				lat[mode+" p99"] = append(lat[mode+" p99"], charts.Point{X: float64(n), Y: med("p99-ns") / 1e6})
			}
		}
		w("\n")
		if len(missing) > 0 {
			w("No figures for %s: the benchmark failed there (its message is in the raw output below).\n\n", strings.Join(missing, ", "))
		}
		var failed []string
		for _, n := range ns {
			for _, mode := range []string{"own", "shared"} {
				if k := strings.Count(m.raw, "--- FAIL: Benchmark"+watcherGroup(n)+"/"+mode+"\n"); k > 0 {
					failed = append(failed, fmt.Sprintf("%s at %d in %d round(s)", mode, n, k))
				}
			}
		}
		if len(failed) > 0 {
			w("The benchmark failed for %s (the messages are in the raw output below); the row shows the other rounds.\n\n", strings.Join(failed, ", "))
		}
		var series []charts.Series
		for _, name := range []string{"own p50", "own p99", "shared p50", "shared p99"} {
			if len(lat[name]) > 0 {
				series = append(series, charts.Series{Name: name, Points: lat[name]})
			}
		}
		chart("bench-scale-watchers.svg", charts.Curves{Title: "Watch event latency against watchers", XLabel: "watchers", YLabel: "ms", LogX: true, LogY: true, Series: series})
	}
	if own {
		w("<details><summary>Raw output of the scale run</summary>\n\n```\n%s```\n\n</details>\n\n", m.raw)
	}
	w("%s\n\n", scaleEnd)
	return b.String(), nil
}

// formatSmall is format, with two significant digits for values below
// 0.01 (a connection shared by 10,000 watchers is 0.0001 per watcher).
func formatSmall(v float64) string {
	if v != 0 && math.Abs(v) < 0.01 {
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	return format(v)
}

// watcherGroup is the benchmark group of n watchers.
func watcherGroup(n int) string { return "ScaleWatchers/watchers=" + strconv.Itoa(n) }

// watcherSizes returns the watcher counts in r: groups
// ScaleWatchers/watchers=n (contenders own and shared), or, from runs made
// before watchers could share a poll, contenders watchers=n of the group
// ScaleWatchers (every watcher had a poll of its own).
func watcherSizes(r *results) []int {
	ns := scaleSizes(r, "ScaleWatchers/watchers=")
	for w := range r.samples["ScaleWatchers"] {
		if n, err := strconv.Atoi(strings.TrimPrefix(w, "watchers=")); err == nil {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}

// watcherMedian is the median of unit for n watchers polling as mode.
func watcherMedian(r *results, n int, mode, unit string) float64 {
	if v := r.values(watcherGroup(n), mode, unit); len(v) > 0 {
		return median(v)
	}
	if mode == "own" {
		return r.median("ScaleWatchers", "watchers="+strconv.Itoa(n), unit)
	}
	return math.NaN()
}

// listBodies maps a listing's key count to its body size from the
// "# scale-list-bytes: n bytes ..." lines.
func listBodies(r *results) map[int]float64 {
	out := map[int]float64{}
	for _, l := range r.meta["scale-list-bytes"] {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, err1 := strconv.Atoi(f[0])
		b, err2 := strconv.ParseFloat(f[1], 64)
		if err1 == nil && err2 == nil {
			out[n] = b
		}
	}
	for n := range out {
		if out[n] <= 0 {
			out[n] = math.NaN()
		}
	}
	return out
}

// spliceScale puts section into doc in place of the one between the
// markers, or before "## Targets" when doc has none.
func spliceScale(doc, section string) (string, error) {
	if i := strings.Index(doc, scaleBegin); i >= 0 {
		j := strings.Index(doc[i:], scaleEnd)
		if j < 0 {
			return "", fmt.Errorf("%s without %s", scaleBegin, scaleEnd)
		}
		rest := strings.TrimLeft(doc[i+j+len(scaleEnd):], "\n")
		return doc[:i] + section + rest, nil
	}
	i := strings.Index(doc, "## Targets\n")
	if i < 0 {
		return "", fmt.Errorf("no %q section to put the scale section before", "## Targets")
	}
	return doc[:i] + section + doc[i:], nil
}

// oldScale returns the scale section of doc, markers included, or "".
func oldScale(doc string) string {
	i := strings.Index(doc, scaleBegin)
	if i < 0 {
		return ""
	}
	j := strings.Index(doc[i:], scaleEnd)
	if j < 0 {
		return ""
	}
	return doc[i:i+j+len(scaleEnd)] + "\n\n"
}
