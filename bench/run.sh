#!/usr/bin/env bash
# Runs the side-by-side benchmarks of this client, the official etcd v2
# client and raw net/http against one real 3-member etcd cluster, and
# writes docs/benchmarks.md with the medians. Needs only Go.
#
#   bench/run.sh           all benchmarks, -count $COUNT (default 5)
#   bench/run.sh profile   CPU and memory profiles of this client's
#                          sequential Get, with the top entries printed
#
# Environment: COUNT (repetitions, default 5), BENCHTIME (default 1s, for
# all but the watch benchmark), WATCH_EVENTS (events per watch run, default
# 400), OUT (markdown file, default docs/benchmarks.md), ETCD_BIN (an etcd
# binary instead of the test bed's build). The benchmark log is kept in
# bench/results.txt (not committed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$here"

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
WATCH_EVENTS=${WATCH_EVENTS:-400}
OUT=${OUT:-$root/docs/benchmarks.md}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go test -c -o "$work/bench.test" .

if [ "${1:-}" = profile ]; then
	prof=${PROFILE_DIR:-$here/profiles}
	mkdir -p "$prof"
	# Two passes: recording every allocation (memprofilerate 1) would
	# distort the CPU profile.
	"$work/bench.test" -test.run '^$' -test.bench '^BenchmarkGet$/^ours$' -test.benchmem \
		-test.benchtime 20000x -test.count 1 -test.cpuprofile "$prof/get-cpu.out" -test.outputdir "$prof"
	"$work/bench.test" -test.run '^$' -test.bench '^BenchmarkGet$/^ours$' -test.benchmem \
		-test.benchtime 5000x -test.count 1 -test.memprofile "$prof/get-mem.out" -test.memprofilerate 1 \
		-test.outputdir "$prof"
	cp "$work/bench.test" "$prof/bench.test"
	echo "== CPU, top by cumulative time in github.com/etcdv2/client"
	go tool pprof -top -cum -focus 'etcdv2/client\.' "$prof/bench.test" "$prof/get-cpu.out" 2>/dev/null | head -45
	echo "== CPU, top by flat time"
	go tool pprof -top "$prof/bench.test" "$prof/get-cpu.out" 2>/dev/null | head -30
	echo "== allocations (objects over all 5000+ Gets and the warm-up), top by flat"
	go tool pprof -top -sample_index=alloc_objects "$prof/bench.test" "$prof/get-mem.out" 2>/dev/null | head -40
	echo "== allocations in github.com/etcdv2/client, by cumulative"
	go tool pprof -top -cum -sample_index=alloc_objects -focus 'etcdv2/client\.' "$prof/bench.test" "$prof/get-mem.out" 2>/dev/null | head -40
	echo "profiles in $prof; e.g. go tool pprof -list 'decodeKeysResponse' $prof/bench.test $prof/get-mem.out"
	exit 0
fi

results=$here/results.txt
official=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v2)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
start=$(date +%s)
{
	echo "# loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
	# Latency, throughput, listing and decoding: time-based b.N.
	"$work/bench.test" -test.run '^$' -test.benchmem -test.count "$COUNT" -test.benchtime "$BENCHTIME" \
		-test.bench '^Benchmark(Get|Set|QuorumGet|GetParallel|List|Decode)$' -test.timeout 60m
	# Watch latency: a fixed number of events per run, for stable percentiles.
	"$work/bench.test" -test.run '^$' -test.benchmem -test.count "$COUNT" -test.benchtime "${WATCH_EVENTS}x" \
		-test.bench '^BenchmarkWatch$' -test.timeout 30m
	echo "# loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$results"

go run ./cmd/report -in "$results" -out "$OUT" -go "$(go version)" -official "$official" -commit "$commit" -count "$COUNT"
echo "wrote $OUT in $(( $(date +%s) - start ))s"
