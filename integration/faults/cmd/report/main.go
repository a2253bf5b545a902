// Command report renders the fault suite's JSON results (and the
// BenchmarkSelection output) into docs/resilience.md:
//
//	go run ./faults/cmd/report -in ../docs/resilience.json \
//		-bench ../docs/resilience-bench.txt -notes faults/notes.md \
//		-out ../docs/resilience.md
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/etcdv2/client/integration/faults"
)

func main() {
	in := flag.String("in", "docs/resilience.json", "results JSON written by TestFaultSuite")
	bench := flag.String("bench", "", "BenchmarkSelection output (optional)")
	notes := flag.String("notes", "", "hand-written observations in Markdown (optional)")
	out := flag.String("out", "docs/resilience.md", "Markdown file to write")
	flag.Parse()
	if err := run(*in, *bench, *notes, *out); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(in, benchPath, notesPath, out string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var r faults.Results
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	read := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		b, err := os.ReadFile(p)
		return string(b), err
	}
	bench, err := read(benchPath)
	if err != nil {
		return err
	}
	notes, err := read(notesPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := faults.Render(&buf, &r, bench, notes); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
