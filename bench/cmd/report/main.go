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
	doc := render(res, meta{
		goVersion: *goVersion, official: *officialVersion, commit: *commit, count: *count,
		date: time.Now().UTC().Format("2006-01-02 15:04 MST"), raw: string(raw),
	})
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
	samples map[string]map[string]map[string][]float64
	meta    map[string][]string // "# key: value" lines
}

var (
	benchLine = regexp.MustCompile(`^Benchmark(\S+)\s+(\d+)\s+(.*)$`)
	procs     = regexp.MustCompile(`-\d+$`)
	metaLine  = regexp.MustCompile(`^# ([A-Za-z0-9-]+): (.*)$`)
)

func parse(s string) *results {
	res := &results{samples: map[string]map[string]map[string][]float64{}, meta: map[string][]string{}}
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := metaLine.FindStringSubmatch(line); m != nil {
			res.meta[m[1]] = append(res.meta[m[1]], m[2])
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
			g := res.samples[group]
			if g == nil {
				g = map[string]map[string][]float64{}
				res.samples[group] = g
			}
			c := g[who]
			if c == nil {
				c = map[string][]float64{}
				g[who] = c
			}
			c[f[j+1]] = append(c[f[j+1]], v)
		}
	}
	return res
}

// median of the samples of group/who/unit, NaN when there are none.
func (r *results) median(group, who, unit string) float64 {
	v := slices.Clone(r.samples[group][who][unit])
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (r *results) n(group, who, unit string) int { return len(r.samples[group][who][unit]) }

type meta struct {
	goVersion, official, commit, date, raw string
	count                                  int
}

// metric is one row kind of a table.
type metric struct {
	unit   string // as go test prints it
	label  string
	scale  float64 // displayed = value / scale
	suffix string  // displayed unit
	higher bool    // higher is better
}

var (
	latency = metric{"ns/op", "latency", 1e3, "µs", false}
	bytesOp = metric{"B/op", "bytes/op", 1, "B", false}
	allocs  = metric{"allocs/op", "allocs/op", 1, "", false}
	getsPS  = metric{"gets/s", "Gets/s", 1, "", true}
	dials   = metric{"dials/1kgets", "dials per 1000 Gets", 1, "", false}
	p50     = metric{"p50-ns", "p50", 1e3, "µs", false}
	p99     = metric{"p99-ns", "p99", 1e3, "µs", false}
)

type table struct {
	title     string
	note      string
	groups    []string
	metrics   []metric
	who       []string
	ratios    [][2]string // numerator, denominator contender
	ratioNote string
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
				"The wrapper costs every contender the same (one request copy per call). For ratios of Gets/s, higher than 1 means ours is faster.",
			groups:  []string{"GetParallel/c=1", "GetParallel/c=16", "GetParallel/c=64", "GetParallel/c=256"},
			metrics: []metric{getsPS, dials},
			who:     []string{"ours", "official", "official-tuned", "raw", "raw-tuned"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "raw-tuned"}, {"ours", "official"}, {"ours", "official-tuned"}},
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
				"raw is a loop of `GET ?wait=true&waitIndex=` long polls. Each event waits 1 ms first so the watcher's next poll is registered.",
			groups:  []string{"Watch"},
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
	for _, t := range tables {
		renderTable(&b, r, t)
	}

	w("## Targets\n\n")
	renderTargets(&b, r)

	w("## Machine and versions\n\n")
	for _, l := range machine(r, m) {
		w("- %s\n", l)
	}
	w("\nThe machine is shared: other work may have run at the same time (see the load averages above), which adds noise to every contender alike; compare columns of one run, not runs of different days.\n\n")

	w("## How to regenerate\n\n")
	w("From the repository root, with only Go installed (the first run builds the etcd 3.5 server from its Go module into the test bed's cache, about a minute):\n\n")
	w("```sh\nbench/run.sh            # all benchmarks, 5 rounds, writes docs/benchmarks.md (about 10-15 minutes on 2 cores)\n")
	w("COUNT=3 bench/run.sh    # fewer rounds\nbench/run.sh profile    # CPU and memory profiles of this client's sequential Get\n```\n\n")
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
				w(" %s |", format(r.median(g, c, mt.unit)/mt.scale))
			}
			for _, rt := range t.ratios {
				w(" %s |", ratio(r.median(g, rt[0], mt.unit), r.median(g, rt[1], mt.unit)))
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

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "–"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "x"
}

// target is one goal and how it is checked.
type target struct {
	text  string
	check func(r *results) (met bool, detail string, ok bool)
}

func renderTargets(b *strings.Builder, r *results) {
	le := func(a, lim float64) bool { return a <= lim }
	targets := []target{
		{"Sequential Get within 1.05x of raw net/http", func(r *results) (bool, string, bool) {
			a, c := r.median("Get", "ours", "ns/op"), r.median("Get", "raw", "ns/op")
			return le(a, 1.05*c), "ours/raw = " + ratio(a, c), !math.IsNaN(a) && !math.IsNaN(c)
		}},
		{"Sequential Get: at most 70 allocations", func(r *results) (bool, string, bool) {
			a := r.median("Get", "ours", "allocs/op")
			return le(a, 70), format(a) + " allocs/op", !math.IsNaN(a)
		}},
		{"64 callers: at least 0.9x raw's Gets/s", func(r *results) (bool, string, bool) {
			g := "GetParallel/c=64"
			a, c, t := r.median(g, "ours", "gets/s"), r.median(g, "raw", "gets/s"), r.median(g, "raw-tuned", "gets/s")
			met := a >= 0.9*c
			d := "ours/raw = " + ratio(a, c) + "; against raw-tuned " + ratio(a, t)
			return met, d, !math.IsNaN(a) && !math.IsNaN(c)
		}},
		{"64 callers: at least 3x the official client's Gets/s (its defaults)", func(r *results) (bool, string, bool) {
			g := "GetParallel/c=64"
			a, c, t := r.median(g, "ours", "gets/s"), r.median(g, "official", "gets/s"), r.median(g, "official-tuned", "gets/s")
			return a >= 3*c, "ours/official = " + ratio(a, c) + "; against official-tuned " + ratio(a, t), !math.IsNaN(a) && !math.IsNaN(c)
		}},
		{"10,000-key listing within 1.1x of reading its bytes", func(r *results) (bool, string, bool) {
			a, c := r.median("List", "ours", "ns/op"), r.median("List", "raw", "ns/op")
			return le(a, 1.1*c), "ours/raw = " + ratio(a, c), !math.IsNaN(a) && !math.IsNaN(c)
		}},
		{"Watch latency no worse than the official client's (p50 and p99)", func(r *results) (bool, string, bool) {
			a50, o50 := r.median("Watch", "ours", "p50-ns"), r.median("Watch", "official", "p50-ns")
			a99, o99 := r.median("Watch", "ours", "p99-ns"), r.median("Watch", "official", "p99-ns")
			d := "p50 " + ratio(a50, o50) + ", p99 " + ratio(a99, o99) + " of official"
			return le(a50, o50) && le(a99, o99), d, !math.IsNaN(a50) && !math.IsNaN(o50)
		}},
	}
	fmt.Fprintf(b, "| target | result | measured |\n|---|---|---|\n")
	for _, t := range targets {
		met, detail, ok := t.check(r)
		verdict := "not met"
		switch {
		case !ok:
			verdict, detail = "not measured", "–"
		case met:
			verdict = "**met**"
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", t.text, verdict, detail)
	}
	fmt.Fprintf(b, "\nMedians decide; with the noise of a shared 2-core machine a ratio within a few percent of its limit can flip between runs.\n\n")
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
	for _, v := range r.meta["etcd-version"] {
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
