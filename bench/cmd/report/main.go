// Command report turns the output of the side-by-side benchmarks (go test
// -bench, any number of -count repetitions, possibly several runs
// concatenated) into docs/benchmarks.md: the median of every figure for
// each contender, ratios against the baselines, the targets and whether
// they are met, and the machine and versions the numbers came from.
//
// Lines of the form "# key: value" in the input carry metadata (etcd
// version, load average); bench/run.sh writes them.
//
//	go run ./cmd/report -in results.txt -out ../docs/benchmarks.md \
//	    -go "$(go version)" -official v2.305.35 -commit abc1234
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	in := flag.String("in", "", "benchmark output file (default stdin)")
	out := flag.String("out", "", "markdown file to write (default stdout)")
	goVersion := flag.String("go", runtime.Version(), "Go version line")
	officialVersion := flag.String("official", "unknown", "version of go.etcd.io/etcd/client/v2")
	commit := flag.String("commit", "unknown", "commit of github.com/etcdv2/client measured")
	count := flag.Int("count", 0, "the number of rounds the benchmarks ran (for the text)")
	notes := flag.String("notes", "", "markdown file of observations pasted after the targets (optional)")
	section := flag.String("section", "", `"tls" or "scale": write only that section into the -out file (replacing the one there, or before "## Targets")`)
	chartDir := flag.String("charts", "", "directory to write the scale section's SVG charts to (the -out file's directory; empty: no charts)")
	flag.Parse()

	var r io.Reader = os.Stdin
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		r = f
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		fatal(err)
	}
	res := parse(string(raw))
	// What the run recorded wins over the flags (which describe now).
	for key, dst := range map[string]*string{"commit": commit, "go-version": goVersion, "official-version": officialVersion} {
		if v := res.meta[key]; len(v) > 0 {
			*dst = v[0]
		}
	}
	if v := res.meta["rounds"]; len(v) > 0 {
		if n, err := strconv.Atoi(v[0]); err == nil {
			*count = n
		}
	}
	date := time.Now().UTC().Format("2006-01-02 15:04 MST")
	if v := res.meta["date"]; len(v) > 0 {
		date = v[0]
	}
	var notesText string
	if *notes != "" {
		b, err := os.ReadFile(*notes)
		if err != nil {
			fatal(err)
		}
		notesText = strings.TrimSpace(string(b))
	}
	m := meta{
		goVersion: *goVersion, official: *officialVersion, commit: *commit, count: *count,
		date: date, raw: string(raw), notes: notesText,
	}
	if *section == "tls" {
		if *out == "" {
			fatal(fmt.Errorf("-section tls needs -out"))
		}
		old, err := os.ReadFile(*out)
		if err != nil {
			fatal(err)
		}
		doc, err := spliceTLS(string(old), renderTLSSection(res, m, true))
		if err != nil {
			fatal(err)
		}
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fatal(err)
		}
		return
	} else if *section == "scale" {
		if *out == "" {
			fatal(fmt.Errorf("-section scale needs -out"))
		}
		old, err := os.ReadFile(*out)
		if err != nil {
			fatal(err)
		}
		sec, err := renderScaleSection(res, m, true, *chartDir)
		if err != nil {
			fatal(err)
		}
		doc, err := spliceScale(string(old), sec)
		if err != nil {
			fatal(err)
		}
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fatal(err)
		}
		return
	} else if *section != "" {
		fatal(fmt.Errorf("unknown -section %q", *section))
	}
	doc := render(res, m)
	if hasScale(res) {
		sec, err := renderScaleSection(res, m, false, *chartDir)
		if err != nil {
			fatal(err)
		}
		if doc, err = spliceScale(doc, sec); err != nil {
			fatal(err)
		}
	} else if *out != "" {
		// Keep the scale section of a run of its own.
		if old, err := os.ReadFile(*out); err == nil {
			if sec := oldScale(string(old)); sec != "" {
				if doc, err = spliceScale(doc, sec); err != nil {
					fatal(err)
				}
			}
		}
	}
	if *out == "" {
		fmt.Print(doc)
		return
	}
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

// results holds every sample: group ("Get", "GetParallel/c=64") ->
// contender ("ours") -> unit ("ns/op") -> values.
type results struct {
	samples map[string]map[string]map[string][]sample
	meta    map[string][]string // "# key: value" lines
}

// sample is one measurement and the round it was taken in ("# round: N"
// lines start rounds; 0 before the first).
type sample struct {
	round int
	v     float64
}

var (
	benchLine = regexp.MustCompile(`^Benchmark(\S+)\s+(\d+)\s+(.*)$`)
	procs     = regexp.MustCompile(`-\d+$`)
	metaLine  = regexp.MustCompile(`^# ([A-Za-z0-9-]+): (.*)$`)
)

func parse(s string) *results {
	res := &results{samples: map[string]map[string]map[string][]sample{}, meta: map[string][]string{}}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	round := 0
	for sc.Scan() {
		line := sc.Text()
		if m := metaLine.FindStringSubmatch(line); m != nil {
			res.meta[m[1]] = append(res.meta[m[1]], m[2])
			if m[1] == "round" {
				round++
			}
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := procs.ReplaceAllString(m[1], "")
		i := strings.LastIndex(name, "/")
		if i < 0 {
			continue
		}
		group, who := name[:i], name[i+1:]
		f := strings.Fields(m[3])
		for j := 0; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				continue
			}
			unit := f[j+1]
			g, w := group, who
			if u, c, ok := strings.Cut(unit, "@"); ok {
				// A metric of one contender in a benchmark that runs them
				// all ("p50-ns@ours"): the benchmark is the group.
				unit, g, w = u, name, c
			} else if strings.HasPrefix(group, "Interleaved") {
				continue // the sum over the contenders
			}
			res.add(g, w, unit, sample{round, v})
		}
	}
	return res
}

func (res *results) add(group, who, unit string, s sample) {
	g := res.samples[group]
	if g == nil {
		g = map[string]map[string][]sample{}
		res.samples[group] = g
	}
	c := g[who]
	if c == nil {
		c = map[string][]sample{}
		g[who] = c
	}
	c[unit] = append(c[unit], s)
}

// values of group/who/unit.
func (r *results) values(group, who, unit string) []float64 {
	var v []float64
	for _, s := range r.samples[group][who][unit] {
		v = append(v, s.v)
	}
	return v
}

// median of the samples of group/who/unit, NaN when there are none.
func (r *results) median(group, who, unit string) float64 {
	return median(r.values(group, who, unit))
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// spread is half the range of the samples relative to their median, in
// percent; NaN with fewer than 3 samples.
func (r *results) spread(group, who, unit string) float64 {
	v := r.values(group, who, unit)
	if len(v) < 3 {
		return math.NaN()
	}
	m := median(v)
	if m == 0 {
		return math.NaN()
	}
	return (slices.Max(v) - slices.Min(v)) / 2 / m * 100
}

// roundRatios are the ratios of a to b within each round where both ran
// (none without "# round:" lines).
func (r *results) roundRatios(group, a, b, unit string) []float64 {
	var ratios []float64
	for _, x := range r.samples[group][a][unit] {
		for _, y := range r.samples[group][b][unit] {
			if x.round > 0 && x.round == y.round && y.v != 0 {
				ratios = append(ratios, x.v/y.v)
				break
			}
		}
	}
	return ratios
}

// ratio of a to b for group/unit: the median over rounds of the ratio
// within each round in which both ran (paired, so that a change of load
// between rounds cancels out), or the ratio of the medians when no round
// has both.
func (r *results) ratio(group, a, b, unit string) float64 {
	if ratios := r.roundRatios(group, a, b, unit); len(ratios) > 0 {
		return median(ratios)
	}
	mb := r.median(group, b, unit)
	if mb == 0 {
		return math.NaN()
	}
	return r.median(group, a, unit) / mb
}

type meta struct {
	goVersion, official, commit, date, raw string
	count                                  int
	// notes are observations pasted after the targets.
	notes string
}

// metric is one row kind of a table.
type metric struct {
	unit   string // as go test prints it
	label  string
	scale  float64 // displayed = value / scale
	suffix string  // displayed unit
	higher bool    // higher is better
	// counts marks a figure that is often 0 (dials): its ratio is that of
	// the medians, since a ratio within a round is undefined at 0.
	counts bool
}

var (
	latency = metric{"ns/op", "latency", 1e3, "µs", false, false}
	bytesOp = metric{"B/op", "bytes/op", 1, "B", false, false}
	allocs  = metric{"allocs/op", "allocs/op", 1, "", false, false}
	getsPS  = metric{"gets/s", "Gets/s", 1, "", true, false}
	dials   = metric{"dials/1kgets", "dials per 1000 Gets", 1, "", false, true}
	p50     = metric{"p50-ns", "p50", 1e3, "µs", false, false}
	p99     = metric{"p99-ns", "p99", 1e3, "µs", false, false}
	p50call = metric{"p50-ns", "median call", 1e3, "µs", false, false}
	cpuGet  = metric{"cpu-ns/op", "client CPU per Get", 1e3, "µs", false, false}
)

type table struct {
	title   string
	note    string
	groups  []string
	metrics []metric
	who     []string
	ratios  [][2]string // numerator, denominator contender
}

func render(r *results, m meta) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	haveOurs := false
	for _, g := range r.samples {
		if _, ok := g["ours"]; ok {
			haveOurs = true
		}
	}

	w("# Benchmarks: this client, the official v2 client and raw net/http\n\n")
	w("Generated by `bench/run.sh` on %s. Every figure is the **median of %s rounds**. ", m.date, countText(m.count))
	w("A round is one run of the benchmark binary (`-count 1`, `-benchtime 1s`): it starts its own real 3-member etcd cluster on loopback, ")
	w("and every contender runs each benchmark against that same cluster, one contender after the other. Do not edit by hand: regenerate (see the end).\n\n")
	if !haveOurs {
		w("> **This client's columns are empty**: the keys API (`NewKeysAPI`) was not in this tree when the benchmarks ran.\n\n")
	}
	w("## Contenders\n\n")
	w("- **ours**: `github.com/etcdv2/client` at commit `%s`, default `Config` (only `Endpoints` set), so its `DefaultTransport`.\n", m.commit)
	w("- **official**: `go.etcd.io/etcd/client/v2` %s, default `Config` (its `DefaultTransport`: net/http's default of 2 idle connections per host).\n", m.official)
	w("- **official-tuned** (throughput only): the official client with a copy of its `DefaultTransport` whose `MaxIdleConnsPerHost` is the number of callers.\n")
	w("- **raw**: hand-written `net/http` requests on a transport with net/http's default settings (its own copy of `http.DefaultTransport`); a GET reads the body and checks the status, nothing more: the floor a client can reach.\n")
	w("- **raw-tuned** (throughput only): the same with `MaxIdleConnsPerHost` = number of callers.\n")
	w("- **raw-json**: raw plus `encoding/json` decoding of the body into a struct like the client's `Response`.\n")
	w("- **json-mem** (decode benchmarks only): `encoding/json` decoding the same bytes from memory, without HTTP.\n\n")
	w("All contenders are given the **leader's** client URL as their only endpoint, so that all of them talk to the same member ")
	w("(a Set sent to a follower costs an extra forwarding hop). The watch benchmark connects the watchers to a follower and writes on the leader.\n\n")

	tables := []table{
		{
			title:   "Sequential latency (one caller, one 32-byte key)",
			note:    "`BenchmarkGet`, `BenchmarkSet`, `BenchmarkQuorumGet`: ns/op of back-to-back calls is the latency. A quorum Get goes through raft.",
			groups:  []string{"Get", "Set", "QuorumGet"},
			metrics: []metric{latency, allocs, bytesOp},
			who:     []string{"ours", "official", "raw"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "official"}},
		},
		{
			title: "Get throughput with concurrent callers",
			note: "`BenchmarkGetParallel/c=N`: N goroutines share one client and take b.N Gets from a shared counter. " +
				"Dials are counted by wrapping each contender's transport object (for ours and official, their package's own `DefaultTransport`, unchanged) " +
				"in a RoundTripper that only adds an `httptrace.ClientTrace` and counts `GotConn` with `Reused == false`, i.e. connections carrying their first request. " +
				"The wrapper costs every contender the same (one request copy per call).",
			groups:  []string{"GetParallel/c=1", "GetParallel/c=16", "GetParallel/c=64", "GetParallel/c=256"},
			metrics: []metric{getsPS, dials},
			who:     []string{"ours", "official", "official-tuned", "raw", "raw-tuned"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "raw-tuned"}, {"ours", "official"}, {"ours", "official-tuned"}},
		},
		{
			title: "Interleaved: the same calls, contenders taking turns",
			note: "`BenchmarkInterleaved/Get` and `/List`: the Get of the table above and the 10,000-key listing below, but in one benchmark in which each iteration " +
				"makes one call with every contender, starting with a different one each time, and times each call; the figure is each contender's median call. " +
				"On a shared machine whose load moves from second to second this is the fairest comparison of latency, and the targets below use it.",
			groups:  []string{"Interleaved/Get", "Interleaved/List"},
			metrics: []metric{p50call},
			who:     []string{"ours", "official", "raw", "raw-json"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "official"}, {"ours", "raw-json"}},
		},
		{
			title: "Interleaved: Get throughput, contenders taking turns",
			note: "`BenchmarkInterleaved/GetParallel/c=N`: the Gets of `BenchmarkGetParallel/c=N` with ours, official and raw-tuned taking turns in batches of 8N Gets, " +
				"starting with a different one each iteration; the figures are each contender's median batch (Gets/s, and the client process's CPU time per Get). " +
				"Run one after the other, the contenders of the table above meet a machine whose load has moved in between; taking turns spreads that over all of them, and the throughput targets below use it.",
			groups:  []string{"Interleaved/GetParallel/c=64", "Interleaved/GetParallel/c=256"},
			metrics: []metric{getsPS, cpuGet},
			who:     []string{"ours", "official", "raw-tuned"},
			ratios:  [][2]string{{"ours", "raw-tuned"}, {"ours", "official"}},
		},
		{
			title:   "Recursive Get of 10,000 keys",
			note:    "`BenchmarkList`: a recursive Get of a directory with 10,000 children of 32-byte values (" + listBytes(r) + " of JSON). raw only reads the bytes: the floor.",
			groups:  []string{"List"},
			metrics: []metric{latency, allocs, bytesOp},
			who:     []string{"ours", "official", "raw", "raw-json"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "official"}, {"ours", "raw-json"}},
		},
		{
			title: "Watch event latency",
			note: "`BenchmarkWatch`: time from the start of a Set on the leader (by the same raw setter for everyone) to the event arriving from the contender's watcher on a follower; " +
				"raw is a loop of `GET ?wait=true&waitIndex=` long polls. Each event waits 1 ms first so the watcher's next poll is registered. " +
				"`BenchmarkInterleaved/Watch`: the same with the contenders taking turns (each watches a key of its own, and each iteration sets every contender's key in turn, " +
				"starting with a different one each time), over at least 1,000 events each, so that a p99 is not one or two stragglers; the target below uses it.",
			groups:  []string{"Watch", "Interleaved/Watch"},
			metrics: []metric{p50, p99},
			who:     []string{"ours", "official", "raw"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "official"}},
		},
		{
			title: "Client-side cost: decoding canned responses",
			note: "`BenchmarkDecode`: the responses come from an in-process `httptest` server with canned bytes in etcd's format (no etcd), " +
				"so the figures are loopback HTTP plus decoding. one = a single 32-byte key; list = the 10,000-key listing. This client's decoder is unexported, so it is reached through `KeysAPI.Get`.",
			groups:  []string{"Decode/one", "Decode/list"},
			metrics: []metric{latency, allocs, bytesOp},
			who:     []string{"ours", "official", "raw", "raw-json", "json-mem"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "official"}, {"ours", "raw-json"}},
		},
	}
	w("## Reading the tables\n\n")
	w("Each cell is the median over the rounds, with ±N%% = half the range of the rounds relative to the median when that is 1%% or more: ")
	w("the machine is shared, and the spread shows how much its load moved. ")
	w("A ratio column (ours / X) is **paired**: the median over the rounds of the ratio between the two contenders *within* each round, ")
	w("so that a change of load between rounds cancels out; it can therefore differ from the ratio of the two medians beside it. ")
	w("Dials are counts, often 0, so their ratio is that of the medians. ")
	w("For latency, bytes, allocations and dials below 1x means ours is better; for Gets/s above 1x does.\n\n")
	for _, t := range tables {
		renderTable(&b, r, t)
	}

	if hasTLS(r) {
		b.WriteString(renderTLSSection(r, m, false))
	}

	w("## Targets\n\n")
	renderTargets(&b, r)

	if m.notes != "" {
		w("%s\n\n", m.notes)
	}

	w("## Machine and versions\n\n")
	for _, l := range machine(r, m) {
		w("- %s\n", l)
	}
	w("\nThe machine is shared: other work may have run at the same time (see the load averages above), which adds noise to every contender alike; compare columns of one run, not runs of different days.\n\n")

	w("## How to regenerate\n\n")
	w("From the repository root, with only Go installed (the first run builds the etcd 3.5 server from its Go module into the test bed's cache, about a minute):\n\n")
	w("```sh\nbench/run.sh            # all benchmarks, 5 rounds, writes docs/benchmarks.md (about 10-15 minutes on 2 cores)\n")
	w("COUNT=3 bench/run.sh    # fewer rounds\nbench/run.sh profile    # CPU and memory profiles of this client's sequential Get\n")
	w("bench/run.sh tls        # only the TLS benchmarks, replacing the TLS section\n")
	w("bench/run.sh scale      # only the scale curves (SCALE=small or SCALE=1), replacing their section and charts\n")
	w("bench/run.sh decode     # the decoding comparison with JSON libraries (see docs/decoding.md)\n```\n\n")
	w("Single benchmarks run as usual, e.g. `go -C bench test -run '^$' -bench 'GetParallel/c=64' -benchmem`. ")
	w("`go -C bench test ./...` without `-bench` runs only quick checks that need no etcd.\n\n")

	w("<details><summary>Raw benchmark output</summary>\n\n```\n%s```\n\n</details>\n", m.raw)
	return b.String()
}

func countText(n int) string {
	if n <= 0 {
		return "the"
	}
	return strconv.Itoa(n)
}

func renderTable(b *strings.Builder, r *results, t table) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## %s\n\n%s\n\n", t.title, t.note)
	w("| figure |")
	for _, c := range t.who {
		w(" %s |", c)
	}
	for _, rt := range t.ratios {
		w(" %s / %s |", rt[0], rt[1])
	}
	w("\n|---|")
	for range len(t.who) + len(t.ratios) {
		w("---:|")
	}
	w("\n")
	for _, g := range t.groups {
		for _, mt := range t.metrics {
			unit := ""
			if mt.suffix != "" {
				unit = " (" + mt.suffix + ")"
			}
			w("| %s %s%s |", g, mt.label, unit)
			for _, c := range t.who {
				cell := format(r.median(g, c, mt.unit) / mt.scale)
				if sp := r.spread(g, c, mt.unit); sp >= 1 {
					cell += fmt.Sprintf(" ±%.0f%%", sp)
				}
				w(" %s |", cell)
			}
			for _, rt := range t.ratios {
				x := r.ratio(g, rt[0], rt[1], mt.unit)
				if mt.counts {
					x = r.median(g, rt[0], mt.unit) / r.median(g, rt[1], mt.unit)
				}
				w(" %s |", ratioText(x))
			}
			w("\n")
		}
	}
	w("\n")
}

func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func ratioText(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "x"
}

// target is one goal and how it is checked.
type target struct {
	text  string
	check func(r *results) (met bool, detail string, ok bool)
}

func renderTargets(b *strings.Builder, r *results) {
	// ok reports whether both contenders were measured.
	ok := func(g, a, c, unit string) bool {
		return !math.IsNaN(r.median(g, a, unit)) && !math.IsNaN(r.median(g, c, unit))
	}
	targets := []target{}
	for _, n := range []string{"64", "256"} {
		par := "GetParallel/c=" + n
		allocsOf := par // allocations are measured by the benchmark of its own
		if !math.IsNaN(r.median("Interleaved/"+par, "ours", "gets/s")) {
			par = "Interleaved/" + par
		}
		targets = append(targets,
			target{n + " callers: at least 0.95x raw-tuned's Gets/s (raw net/http, idle pool sized to the callers)", func(r *results) (bool, string, bool) {
				x := r.ratio(par, "ours", "raw-tuned", "gets/s")
				d := "ours/raw-tuned = " + ratioText(x) + rounds(r, par, "ours", "raw-tuned", "gets/s", func(v float64) bool { return v >= 0.95 })
				return x >= 0.95, d, ok(par, "ours", "raw-tuned", "gets/s")
			}},
			target{n + " callers: at least 3x the official client's Gets/s (its defaults)", func(r *results) (bool, string, bool) {
				x := r.ratio(par, "ours", "official", "gets/s")
				d := "ours/official = " + ratioText(x) + rounds(r, par, "ours", "official", "gets/s", func(v float64) bool { return v >= 3 })
				if t := r.ratio(par, "ours", "official-tuned", "gets/s"); !math.IsNaN(t) {
					d += "; against official-tuned " + ratioText(t)
				}
				return x >= 3, d, ok(par, "ours", "official", "gets/s")
			}},
			target{n + " callers: client CPU per Get within 1.1x of raw-tuned's", func(r *results) (bool, string, bool) {
				x := r.ratio(par, "ours", "raw-tuned", "cpu-ns/op")
				d := "ours/raw-tuned = " + ratioText(x) + rounds(r, par, "ours", "raw-tuned", "cpu-ns/op", func(v float64) bool { return v <= 1.1 })
				return x <= 1.1, d, ok(par, "ours", "raw-tuned", "cpu-ns/op")
			}},
			target{n + " callers: at most raw-tuned's allocations per Get + 3", func(r *results) (bool, string, bool) {
				a, b := r.median(allocsOf, "ours", "allocs/op"), r.median(allocsOf, "raw-tuned", "allocs/op")
				return a <= b+3, format(a) + " against " + format(b), ok(allocsOf, "ours", "raw-tuned", "allocs/op")
			}},
		)
	}
	targets = append(targets,
		target{"10,000-key listing within 1.1x of reading its bytes", func(r *results) (bool, string, bool) {
			g, unit := latencySource(r, "List")
			x := r.ratio(g, "ours", "raw", unit)
			return x <= 1.1, "ours/raw = " + ratioText(x) + rounds(r, g, "ours", "raw", unit, func(v float64) bool { return v <= 1.1 }), ok(g, "ours", "raw", unit)
		}},
		target{"10,000-key listing: memory allocated at most 1.5x the body", func(r *results) (bool, string, bool) {
			a, n := r.median("List", "ours", "B/op"), listBodyBytes(r)
			return a <= 1.5*n, fmt.Sprintf("%s B/op for a body of %s B (%s)", format(a), format(n), ratioText(a/n)), !math.IsNaN(a) && !math.IsNaN(n)
		}},
		target{"Sequential Get within 1.05x of raw net/http", func(r *results) (bool, string, bool) {
			g, unit := latencySource(r, "Get")
			x := r.ratio(g, "ours", "raw", unit)
			return x <= 1.05, "ours/raw = " + ratioText(x) + rounds(r, g, "ours", "raw", unit, func(v float64) bool { return v <= 1.05 }), ok(g, "ours", "raw", unit)
		}},
		target{"Watch latency no worse than the official client's (p50 and p99)", func(r *results) (bool, string, bool) {
			g, _ := latencySource(r, "Watch")
			x50 := r.ratio(g, "ours", "official", "p50-ns")
			x99 := r.ratio(g, "ours", "official", "p99-ns")
			le1 := func(v float64) bool { return v <= 1 }
			d := "p50 " + ratioText(x50) + rounds(r, g, "ours", "official", "p50-ns", le1) +
				", p99 " + ratioText(x99) + rounds(r, g, "ours", "official", "p99-ns", le1) + " of official"
			return x50 <= 1 && x99 <= 1, d, ok(g, "ours", "official", "p50-ns")
		}},
	)
	fmt.Fprintf(b, "| target | result | measured |\n|---|---|---|\n")
	for _, t := range targets {
		met, detail, measured := t.check(r)
		verdict := "not met"
		switch {
		case !measured:
			verdict, detail = "not measured", "–"
		case met:
			verdict = "**met**"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", t.text, verdict, detail)
	}
	fmt.Fprintf(b, "\nThe verdict follows the median of the paired ratios; \"met in k of n rounds\" shows how firm it is on this shared machine. ")
	fmt.Fprintf(b, "The throughput, CPU, latency and listing targets use the interleaved benchmarks when they ran (allocations come from `BenchmarkGetParallel`).\n\n")
}

// latencySource picks the interleaved measurement of a call when the
// results have it, else the separate benchmark's ns/op.
func latencySource(r *results, call string) (group, unit string) {
	if !math.IsNaN(r.median("Interleaved/"+call, "ours", "p50-ns")) {
		return "Interleaved/" + call, "p50-ns"
	}
	return call, "ns/op"
}

// rounds says in how many rounds the paired ratio met the target.
func rounds(r *results, group, a, b, unit string, met func(float64) bool) string {
	rs := r.roundRatios(group, a, b, unit)
	if len(rs) < 2 {
		return ""
	}
	n := 0
	for _, v := range rs {
		if met(v) {
			n++
		}
	}
	return fmt.Sprintf(" (met in %d of %d rounds)", n, len(rs))
}

func machine(r *results, m meta) []string {
	var out []string
	out = append(out, fmt.Sprintf("CPU: %s, %d logical CPUs (nproc)", cpuModel(), runtime.NumCPU()))
	out = append(out, "Memory: "+memTotal())
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		out = append(out, "Kernel: Linux "+strings.TrimSpace(string(k)))
	}
	out = append(out, "Go: "+m.goVersion)
	out = append(out, "etcd: "+etcdVersion(r))
	out = append(out, "Official client: go.etcd.io/etcd/client/v2 "+m.official)
	out = append(out, "This client: commit "+m.commit)
	out = append(out, "Date: "+m.date)
	for _, k := range []string{"loadavg-before", "loadavg-after"} {
		for _, v := range r.meta[k] {
			out = append(out, fmt.Sprintf("%s (1, 5, 15 min): %s", strings.ReplaceAll(k, "-", " "), v))
		}
	}
	return out
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return strings.TrimSpace(v)
			}
			return fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	return "unknown"
}

// listBodyBytes is the listing's size from its "# list-bytes:" line; NaN
// if it was not printed.
func listBodyBytes(r *results) float64 {
	for _, v := range r.meta["list-bytes"] {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			return n
		}
	}
	return math.NaN()
}

// listBytes reads the "# list-bytes:" line the listing benchmark prints.
func listBytes(r *results) string {
	for _, v := range r.meta["list-bytes"] {
		if n, err := strconv.ParseFloat(v, 64); err == nil {
			return fmt.Sprintf("%.2f MB", n/1e6)
		}
	}
	return "about 1 MB"
}

// etcdVersion reads the "# etcd-version:" lines (the body of GET /version).
func etcdVersion(r *results) string {
	if vs := r.meta["etcd-version"]; len(vs) > 0 {
		v := vs[0]
		var ver struct {
			Server  string `json:"etcdserver"`
			Cluster string `json:"etcdcluster"`
		}
		if json.Unmarshal([]byte(v), &ver) == nil && ver.Server != "" {
			return fmt.Sprintf("%s (cluster version %s), 3 members on loopback, v2 API enabled", ver.Server, ver.Cluster)
		}
		return v
	}
	return "unknown"
}
