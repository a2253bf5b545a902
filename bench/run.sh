#!/usr/bin/env bash
# Runs the side-by-side benchmarks of this client, the official etcd v2
# client and raw net/http against one real 3-member etcd cluster, and
# writes docs/benchmarks.md with the medians. Needs only Go.
#
#   bench/run.sh           all benchmarks, -count $COUNT (default 5)
#   bench/run.sh profile   CPU and memory profiles of this client's
#                          sequential Get (and CPU of its 10,000-key
#                          listing decode), with the top entries printed
#   bench/run.sh report    only regenerate the markdown from
#                          bench/results.txt of an earlier run
#   bench/run.sh tls       only the TLS benchmarks (their own https
#                          cluster), replacing the TLS section of
#                          docs/benchmarks.md (log: bench/results-tls.txt)
#   bench/run.sh scale     only the scale curves (BenchmarkScale*: listing
#                          size, callers, endpoints, watchers), replacing
#                          the scale section of docs/benchmarks.md and its
#                          SVG charts (log: bench/results-scale.txt);
#                          SCALE=small (default) or SCALE=1 for every size,
#                          ETCDV2_BENCH_1M=1 adds the 1M-key listing;
#                          SCALE_BENCH narrows the -bench pattern (default
#                          ^BenchmarkScale)
#   bench/run.sh decode    the decoding comparison with JSON libraries
#                          (BenchmarkDecodeLibs, BenchmarkDecodeInterleaved,
#                          the latter again from a GOEXPERIMENT=jsonv2
#                          build with encoding/json/v2), printed for
#                          docs/decoding.md (log: bench/results-decode.txt)
#
# Environment: COUNT (rounds, default 5), BENCHTIME (default 1s), BENCH
# (-bench pattern, default all), OUT (markdown file, default
# docs/benchmarks.md), ETCD_BIN (an etcd binary instead of the test bed's
# build). The benchmark log is kept in
# bench/results.txt (not committed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$here"

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
BENCH=${BENCH:-.}
OUT=${OUT:-$root/docs/benchmarks.md}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "${1:-}" = report ]; then
	go run ./cmd/report -in "$here/results.txt" -out "$OUT" -go "$(go version)" \
		-official "$(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v2)" \
		-commit "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)" -count "$COUNT" -notes "$here/notes.md" -charts "$(dirname "$OUT")"
	echo "wrote $OUT"
	exit 0
fi

go test -c -o "$work/bench.test" .

if [ "${1:-}" = tls ]; then
	results=$here/results-tls.txt
	{
		echo "# loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "# commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
		echo "# rounds: $COUNT"
		for round in $(seq 1 "$COUNT"); do
			echo "# round: $round"
			"$work/bench.test" -test.run '^$' -test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" \
				-test.bench '^BenchmarkTLS' -test.timeout 30m
		done
		echo "# loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)"
	} 2>&1 | tee "$results"
	go run ./cmd/report -in "$results" -out "$OUT" -section tls -go "$(go version)" \
		-official "$(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v2)"
	echo "wrote the TLS section of $OUT"
	exit 0
fi

if [ "${1:-}" = scale ]; then
	results=$here/results-scale.txt
	SCALE=${SCALE:-small}
	{
		echo "# loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "# commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
		echo "# scale-mode: $SCALE"
		echo "# rounds: $COUNT"
		for round in $(seq 1 "$COUNT"); do
			echo "# round: $round"
			ETCDV2_BENCH_SCALE=$SCALE "$work/bench.test" -test.run '^$' -test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" \
				-test.bench "${SCALE_BENCH:-^BenchmarkScale}" -test.timeout 120m
		done
		echo "# loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)"
	} 2>&1 | tee "$results"
	go run ./cmd/report -in "$results" -out "$OUT" -section scale -charts "$(dirname "$OUT")"
	echo "wrote the scale section of $OUT"
	exit 0
fi

if [ "${1:-}" = decode ]; then
	results=$here/results-decode.txt
	GOEXPERIMENT=jsonv2 go test -c -o "$work/bench-v2.test" .
	{
		echo "# loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
		for round in $(seq 1 "$COUNT"); do
			echo "# round: $round"
			"$work/bench.test" -test.run '^$' -test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" -test.bench '^BenchmarkDecode(Libs|Interleaved)$'
			# Interleaved again with encoding/json/v2 among the contenders
			# (in this build encoding/json runs on the v2 implementation).
			"$work/bench-v2.test" -test.run '^$' -test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" -test.bench '^BenchmarkDecodeInterleaved$' | sed 's/^BenchmarkDecodeInterleaved/BenchmarkDecodeInterleavedV2/'
		done
		echo "# loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)"
	} 2>&1 | tee "$results"
	exit 0
fi

if [ "${1:-}" = profile ]; then
	prof=${PROFILE_DIR:-$here/profiles}
	mkdir -p "$prof"
	# Two passes: recording every allocation (memprofilerate 1) would
	# distort the CPU profile.
	"$work/bench.test" -test.run '^$' -test.bench '^BenchmarkGet$/^ours$' -test.benchmem \
		-test.benchtime 20000x -test.count 1 -test.cpuprofile "$prof/get-cpu.out" -test.outputdir "$prof"
	# The same for raw net/http, to compare the CPU time per Get.
	"$work/bench.test" -test.run '^$' -test.bench '^BenchmarkGet$/^raw$' -test.benchmem \
		-test.benchtime 20000x -test.count 1 -test.cpuprofile "$prof/get-cpu-raw.out" -test.outputdir "$prof"
	"$work/bench.test" -test.run '^$' -test.bench '^BenchmarkGet$/^ours$' -test.benchmem \
		-test.benchtime 5000x -test.count 1 -test.memprofile "$prof/get-mem.out" -test.memprofilerate 1 \
		-test.outputdir "$prof"
	cp "$work/bench.test" "$prof/bench.test"
	echo "== CPU, top by cumulative time in github.com/etcdv2/client"
	go tool pprof -top -cum -focus 'etcdv2/client\.' "$prof/bench.test" "$prof/get-cpu.out" 2>/dev/null | head -45
	echo "== CPU of raw net/http for the same 20000 Gets (compare Total samples)"
	go tool pprof -top "$prof/bench.test" "$prof/get-cpu-raw.out" 2>/dev/null | sed -n '1,8p'
	echo "== CPU, top by flat time"
	go tool pprof -top "$prof/bench.test" "$prof/get-cpu.out" 2>/dev/null | head -30
	echo "== allocations (objects over all 5000+ Gets and the warm-up), top by flat"
	go tool pprof -top -sample_index=alloc_objects "$prof/bench.test" "$prof/get-mem.out" 2>/dev/null | head -40
	echo "== allocations in github.com/etcdv2/client, by cumulative"
	go tool pprof -top -cum -sample_index=alloc_objects -focus 'etcdv2/client\.' "$prof/bench.test" "$prof/get-mem.out" 2>/dev/null | head -40
	# The client side of the 10,000-key listing, without etcd (canned bytes).
	"$work/bench.test" -test.run '^$' -test.bench '^BenchmarkDecode$/^list$/^ours$' -test.benchmem \
		-test.benchtime 200x -test.count 1 -test.cpuprofile "$prof/list-cpu.out" -test.outputdir "$prof"
	echo "== CPU of the 10,000-key listing (canned), top by cumulative time in github.com/etcdv2/client"
	go tool pprof -top -cum -focus 'etcdv2/client\.' "$prof/bench.test" "$prof/list-cpu.out" 2>/dev/null | head -40
	echo "profiles in $prof; e.g. go tool pprof -list 'decodeKeysResponse' $prof/bench.test $prof/get-mem.out"
	exit 0
fi

results=$here/results.txt
official=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v2)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
start=$(date +%s)
mkdir -p "$(dirname "$OUT")"
{
	echo "# loadavg-before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "# commit: $commit"
	echo "# go-version: $(go version)"
	echo "# official-version: $official"
	echo "# rounds: $COUNT"
	# COUNT rounds of -count 1 rather than one -count COUNT: go test repeats
	# a sub-benchmark COUNT times in a row, so a change of load on the
	# machine would fall on one contender; a round runs every contender
	# once, one after the other, against the round's own cluster.
	for round in $(seq 1 "$COUNT"); do
		echo "# round: $round"
		"$work/bench.test" -test.run '^$' -test.benchmem -test.count 1 -test.benchtime "$BENCHTIME" \
			-test.bench "$BENCH" -test.timeout 30m
	done
	echo "# loadavg-after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$results"

go run ./cmd/report -in "$results" -out "$OUT" -go "$(go version)" -official "$official" -commit "$commit" -count "$COUNT" -notes "$here/notes.md" -charts "$(dirname "$OUT")"
echo "wrote $OUT in $(( $(date +%s) - start ))s"
