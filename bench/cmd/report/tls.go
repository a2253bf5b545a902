package main

import (
	"fmt"
	"strings"
)

// Markers around the TLS section, so that a TLS-only run can replace it.
const (
	tlsBegin = "<!-- tls-begin -->"
	tlsEnd   = "<!-- tls-end -->"
)

var handshakes = metric{"handshakes/1kgets", "TLS handshakes per 1000 Gets", 1, "", false, true}

// hasTLS reports whether r holds results of the TLS benchmarks.
func hasTLS(r *results) bool {
	_, ok := r.samples["TLSGet"]
	_, ok2 := r.samples["TLSGetParallel/c=64"]
	return ok || ok2
}

// renderTLSSection renders the TLS tables between the markers; own says
// the figures come from a run of their own (bench/run.sh tls), whose date,
// rounds and load it then states.
func renderTLSSection(r *results, m meta, own bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n## TLS: https with client certificates\n\n", tlsBegin)
	w("`BenchmarkTLSGet` and `BenchmarkTLSGetParallel/c=64` run against a second 3-member cluster whose members serve https and require client certificates ")
	w("(ECDSA P-256 certificates made by the test bed, TLS 1.3). Every contender is given the same files: ours through `client.NewTLSTransport`, ")
	w("official and raw through a `tls.Config` on a copy of their usual transport (official: its `DefaultTransport`, 2 idle connections per host; raw: net/http's defaults, ")
	w("which negotiate **HTTP/2** over TLS, so raw multiplexes all callers on one connection, while ours and official speak HTTP/1.1 with a connection per concurrent request). ")
	w("Every transport is wrapped in the counting RoundTripper above: over https each new connection is one TLS handshake. ")
	w("The sequential figures follow one untimed warm-up call, which makes the first handshake.\n\n")
	if own {
		date := m.date
		load := ""
		if v := r.meta["loadavg-before"]; len(v) > 0 {
			load = "load average " + v[0]
			if a := r.meta["loadavg-after"]; len(a) > 0 {
				load += " before, " + a[0] + " after"
			}
		}
		w("These figures come from a run of their own (`bench/run.sh tls`) on %s, median of %s rounds, at commit `%s`, on the same shared 2-core machine (%s): ", date, countText(m.count), m.commit, load)
		w("compare the columns of this section with each other, not with the tables above.\n\n")
	}
	for _, t := range []table{
		{
			title:   "TLS: sequential Get",
			note:    "`BenchmarkTLSGet`: back-to-back Gets of one 32-byte key on the leader over https.",
			groups:  []string{"TLSGet"},
			metrics: []metric{latency, allocs, bytesOp, handshakes},
			who:     []string{"ours", "official", "raw"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "official"}},
		},
		{
			title:   "TLS: Get throughput with 64 callers",
			note:    "`BenchmarkTLSGetParallel/c=64`: 64 goroutines share one client over https; tuned = `MaxIdleConnsPerHost` 64.",
			groups:  []string{"TLSGetParallel/c=64"},
			metrics: []metric{getsPS, handshakes},
			who:     []string{"ours", "official", "official-tuned", "raw", "raw-tuned"},
			ratios:  [][2]string{{"ours", "raw"}, {"ours", "official"}, {"ours", "official-tuned"}},
		},
	} {
		var tb strings.Builder
		renderTable(&tb, r, t)
		// Subsections of the TLS section.
		b.WriteString("#" + tb.String())
	}
	if own {
		w("<details><summary>Raw output of the TLS run</summary>\n\n```\n%s```\n\n</details>\n\n", m.raw)
	}
	w("%s\n\n", tlsEnd)
	return b.String()
}

// spliceTLS puts section into doc in place of the one between the markers,
// or before "## Targets" when doc has none.
func spliceTLS(doc, section string) (string, error) {
	if i := strings.Index(doc, tlsBegin); i >= 0 {
		j := strings.Index(doc[i:], tlsEnd)
		if j < 0 {
			return "", fmt.Errorf("%s without %s", tlsBegin, tlsEnd)
		}
		rest := strings.TrimLeft(doc[i+j+len(tlsEnd):], "\n")
		return doc[:i] + section + rest, nil
	}
	i := strings.Index(doc, "## Targets\n")
	if i < 0 {
		return "", fmt.Errorf("no %q section to put the TLS section before", "## Targets")
	}
	return doc[:i] + section + doc[i:], nil
}
