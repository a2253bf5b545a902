package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdv2/client/integration/testbed"
	"github.com/stretchr/testify/require"
)

// largeKeys is the size of TestExportImportLarge: ETCDV2CTL_KEYS, or
// 1,000,000 when ETCDV2_FAULTS=1 (the long suites); 0 skips the test.
func largeKeys() int {
	if s := os.Getenv("ETCDV2CTL_KEYS"); s != "" {
		n, _ := strconv.Atoi(s)
		return n
	}
	if os.Getenv("ETCDV2_FAULTS") == "1" {
		return 1_000_000
	}
	return 0
}

// maxRSSLimit bounds the peak memory of one etcdv2ctl import or export of
// the large tree: a fixed budget, independent of the number of keys.
const maxRSSLimit = 64 << 20

// peakRSS samples the peak resident memory (VmHWM) of process pid every
// 20 ms until it exits; the returned function stops sampling and returns
// the last value seen, in bytes. (The rusage of a child started with
// vfork reports the parent's peak, not the program's.)
func peakRSS(pid int) func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
						if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb<<10 > peak.Load() {
							peak.Store(kb << 10)
						}
					}
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

var resumeRE = regexp.MustCompile(`resume with: import --from-line (\d+)`)

// TestExportImportLarge imports a generated tree of largeKeys() keys (1,000
// a directory) streamed through a pipe, exports it, and checks that the
// export has every key and that neither command's peak memory grew beyond
// maxRSSLimit.
func TestExportImportLarge(t *testing.T) {
	n := largeKeys()
	if n == 0 {
		t.Skip("set ETCDV2_FAULTS=1 or ETCDV2CTL_KEYS=N to run")
	}
	c := testbed.NewCluster(t, testbed.Options{ExtraArgs: []string{"--snapshot-count=100000", "--quota-backend-bytes=8589934592"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	ep := "--endpoints=" + c.ClientURLs()[0]
	bin := ctlBinary(t)
	dirs := max(n/1000, 1) // 1,000 keys a directory

	// Import, from a generator writing into the pipe. A write that fails
	// (etcd stalls for seconds while it snapshots a big v2 store) stops
	// the import, which names the line to resume from: resume there, as a
	// user would, and count each written line once.
	start := time.Now()
	writtenLines := make(map[int]bool, n)
	var impRSS int64
	from := 1
	for run := 0; ; run++ {
		require.Less(t, run, 5, "import did not finish in 5 runs")
		imp := exec.CommandContext(ctx, bin, ep, "--timeout", "5s", "--total-timeout", "30s", "import", "--concurrency", "16", "--from-line", strconv.Itoa(from))
		in, err := imp.StdinPipe()
		require.NoError(t, err)
		out, err := imp.StdoutPipe()
		require.NoError(t, err)
		var impErr strings.Builder
		imp.Stderr = &impErr
		require.NoError(t, imp.Start())
		impPeak := peakRSS(imp.Process.Pid)
		go func() {
			w := bufio.NewWriter(in)
			for i := 0; i < n; i++ {
				if _, err := fmt.Fprintf(w, `{"key":"/big/d%04d/k%07d","value":"value-%d"}`+"\n", i%dirs, i, i); err != nil {
					break // the import stopped reading
				}
			}
			w.Flush()
			in.Close()
		}()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), " ")
			l, err := strconv.Atoi(line)
			require.NoError(t, err, sc.Text())
			writtenLines[l] = true
		}
		err = imp.Wait()
		impRSS = max(impRSS, impPeak())
		if err == nil {
			break
		}
		m := resumeRE.FindStringSubmatch(impErr.String())
		require.NotNil(t, m, "%v: %s", err, impErr.String())
		next, _ := strconv.Atoi(m[1])
		for l := from; l < next; l++ {
			require.True(t, writtenLines[l], "line %d before the resume line %d was not reported written", l, next)
		}
		t.Logf("import stopped (%s); resuming at line %d", strings.TrimSpace(impErr.String()), next)
		from = next
	}
	require.Len(t, writtenLines, n)
	impTime := time.Since(start)

	// Export, counting lines as they stream.
	start = time.Now()
	exp := exec.CommandContext(ctx, bin, ep, "--total-timeout", "60s", "export", "/big")
	eout, err := exp.StdoutPipe()
	require.NoError(t, err)
	var expErr strings.Builder
	exp.Stderr = &expErr
	require.NoError(t, exp.Start())
	expPeak := peakRSS(exp.Process.Pid)
	lines, keysSeen := 0, 0
	r := bufio.NewReader(eout)
	for {
		l, err := r.ReadString('\n')
		if l != "" {
			lines++
			if !strings.Contains(l, `"dir":true`) {
				keysSeen++
			}
		}
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
	}
	require.NoError(t, exp.Wait(), expErr.String())
	expRSS := expPeak()
	t.Logf("%d keys: import %s (%.0f keys/s, peak RSS %d MiB), export %s (%.0f keys/s, peak RSS %d MiB)",
		n, impTime.Round(time.Second), float64(n)/impTime.Seconds(), impRSS>>20,
		time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds(), expRSS>>20)
	require.Equal(t, n, keysSeen)

	// A recursive listing of the whole tree, by etcdctl v2 and by
	// etcdv2ctl: the same bytes; how long each takes and its peak memory.
	var sums [2]string
	for i, tool := range []struct {
		name string
		bin  string
		env  []string
	}{{"etcdctl", etcdctlBinary(t), []string{"ETCDCTL_API=2"}}, {"etcdv2ctl", bin, nil}} {
		start := time.Now()
		ls := exec.CommandContext(ctx, tool.bin, ep, "--timeout", "120s", "--total-timeout", "300s", "ls", "--recursive", "--sort", "/big")
		ls.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tool.env...)
		out, err := ls.StdoutPipe()
		require.NoError(t, err)
		var lsErr strings.Builder
		ls.Stderr = &lsErr
		require.NoError(t, ls.Start())
		peak := peakRSS(ls.Process.Pid)
		h := sha256.New()
		nb, err := io.Copy(h, out)
		require.NoError(t, err)
		require.NoError(t, ls.Wait(), lsErr.String())
		t.Logf("%s ls --recursive --sort of %d keys: %s, %d MiB output, peak RSS %d MiB", tool.name, n,
			time.Since(start).Round(time.Millisecond), nb>>20, peak()>>20)
		sums[i] = hex.EncodeToString(h.Sum(nil))
	}
	require.Equal(t, sums[0], sums[1], "same listing")
	require.Equal(t, n+dirs+1, lines, "keys, directories and /big")
	require.Greater(t, impRSS, int64(1<<20), "sampled")
	require.Greater(t, expRSS, int64(1<<20), "sampled")
	require.Less(t, impRSS, int64(maxRSSLimit))
	require.Less(t, expRSS, int64(maxRSSLimit))
}
