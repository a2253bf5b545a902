package main

import (
	"strings"
	"testing"
)

func TestTLSSectionSplice(t *testing.T) {
	r := parse("# round: 1\n" +
		"BenchmarkTLSGet/ours-2 100 150000 ns/op 0 handshakes/1kgets 5000 B/op 70 allocs/op\n" +
		"BenchmarkTLSGet/official-2 100 300000 ns/op 0 handshakes/1kgets 7000 B/op 100 allocs/op\n" +
		"BenchmarkTLSGetParallel/c=64/official-2 100 1 ns/op 270 gets/s 122.5 handshakes/1kgets\n")
	if !hasTLS(r) {
		t.Fatal("hasTLS = false")
	}
	sec := renderTLSSection(r, meta{count: 1, commit: "abc", date: "today"}, true)
	for _, want := range []string{tlsBegin, tlsEnd, "### TLS: sequential Get", "| TLSGet latency (µs) | 150 | 300 | – | – | 0.50x |", "| TLSGetParallel/c=64 TLS handshakes per 1000 Gets | – | 122 |", "median of 1 rounds, at commit `abc`"} {
		if !strings.Contains(sec, want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}

	doc := "# B\n\n## Get\n\nx\n\n## Targets\n\ny\n"
	once, err := spliceTLS(doc, sec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(once, "# B\n\n## Get\n\nx\n\n"+tlsBegin) || !strings.HasSuffix(once, tlsEnd+"\n\n## Targets\n\ny\n") {
		t.Errorf("inserted wrongly:\n%s", once)
	}
	twice, err := spliceTLS(once, strings.Replace(sec, "150 |", "151 |", 1))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(twice, tlsBegin) != 1 || !strings.Contains(twice, "151 |") || strings.Contains(twice, "| 150 |") {
		t.Errorf("replaced wrongly:\n%s", twice)
	}
	if _, err := spliceTLS("no targets", sec); err == nil {
		t.Error("no error without a place for the section")
	}
}
