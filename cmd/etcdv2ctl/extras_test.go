package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/stretchr/testify/require"
)

// ctl runs etcdv2ctl with args and stdin and returns its output and exit
// status.
func ctl(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctlBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	}
	require.NoError(t, err)
	return o.String(), e.String(), 0
}

func newKeys(t *testing.T, c *testbed.Cluster) client.KeysAPI {
	t.Helper()
	cl, err := client.New(client.Config{Endpoints: c.ClientURLs()})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return client.NewKeysAPI(cl)
}

// TestSelectorStats checks that --selector picks the policy and that stats
// reports a killed member as failing and ejected while every request
// succeeds on the others.
func TestSelectorStats(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{Size: 3})
	eps := "--endpoints=" + strings.Join(c.ClientURLs(), ",")

	out, errOut, code := ctl(t, "", eps, "--selector", "round-robin", "-o", "json", "stats", "-n", "30")
	require.Equal(t, 0, code, errOut)
	var st client.Stats
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st.Endpoints, 3)
	for _, e := range st.Endpoints {
		// Round robin spreads the 30 reads (and the sync) evenly.
		require.GreaterOrEqual(t, e.Attempts, uint64(10), "%+v", st)
		require.LessOrEqual(t, e.Attempts, uint64(11), "%+v", st)
	}

	killed := c.Members()[1]
	killed.Kill(t)
	out, errOut, code = ctl(t, "", eps, "--no-sync", "--selector", "least-latency", "-o", "json", "stats", "-n", "30")
	require.Equal(t, 0, code, errOut)
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	found := false
	for _, e := range st.Endpoints {
		if e.URL == killed.URL() {
			found = true
			require.GreaterOrEqual(t, e.Failures, uint64(1), "%+v", e)
			require.GreaterOrEqual(t, e.Ejections, uint64(1), "%+v", e)
			require.Equal(t, client.StateEjected, e.State, "%+v", e)
		}
	}
	require.True(t, found, "%+v", st)

	out, _, code = ctl(t, "", eps, "--no-sync", "--selector", "round-robin", "stats", "-n", "6")
	require.Equal(t, 0, code)
	require.Contains(t, out, "ENDPOINT")
	require.Contains(t, out, "ejected")

	_, errOut, code = ctl(t, "", eps, "--selector", "fastest", "get", "/x")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `unknown selector "fastest"`)
}

// TestWatchForeverKill runs "watch --forever" through kills (-9) of every
// member in turn, with writes before and after each kill, and checks that
// it printed every write once, in order.
func TestWatchForeverKill(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{Size: 3})
	kapi := newKeys(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	resp, err := kapi.Set(ctx, "/start", "x", nil)
	require.NoError(t, err)

	cmd := exec.CommandContext(ctx, ctlBinary(t), "--endpoints="+strings.Join(c.ClientURLs(), ","),
		"watch", "--forever", "--recursive", "--after-index", strconv.FormatUint(resp.Index, 10), "/w")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	var want []string
	n := 0
	write := func(k int) {
		for i := 0; i < k; i++ {
			v := strconv.Itoa(n)
			key := fmt.Sprintf("/w/k%d", n%7)
			// A Set whose answer was lost (the leader killed under it)
			// is not resent by the client: read it back, and set again
			// only if it did not apply (values are unique).
			for try := 0; ; try++ {
				_, err := kapi.Set(ctx, key, v, nil)
				if err == nil {
					break
				}
				require.ErrorIs(t, err, client.ErrOutcomeUnknown)
				require.Less(t, try, 10, "set %s: %v", key, err)
				_, lerr := c.Leader(ctx)
				require.NoError(t, lerr)
				r, gerr := kapi.Get(ctx, key, &client.GetOptions{Quorum: true})
				if gerr == nil && r.Node.Value == v {
					break
				}
			}
			want = append(want, fmt.Sprintf("[set] /w/k%d", n%7), v)
			n++
		}
	}
	for _, m := range c.Members() {
		write(15)
		m.Kill(t)
		write(15)
		m.Restart(t)
		require.NoError(t, c.WaitHealthy(ctx))
	}
	write(5)

	var got []string
	timeout := time.After(60 * time.Second)
	for len(got) < len(want) {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "watch ended early: %s\ngot %q", errOut.String(), got)
			got = append(got, l)
		case <-timeout:
			t.Fatalf("got %d of %d lines after 60 s: %q\nstderr: %s", len(got), len(want), got, errOut.String())
		}
	}
	require.Equal(t, want, got)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	for l := range lines {
		got = append(got, l)
	}
	require.NoError(t, cmd.Wait(), errOut.String())
	require.Equal(t, want, got, "nothing after the last write")
}

// readRecords parses an export.
func readRecords(t *testing.T, s string) []record {
	t.Helper()
	var out []record
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var r record
		require.NoError(t, json.Unmarshal([]byte(l), &r), l)
		out = append(out, r)
	}
	return out
}

// TestExportImport exports a tree with directories, TTLs, an empty
// directory and hidden keys from one cluster, imports it into another, and
// checks that exporting that gives the same records (but indexes and
// expirations); then checks that a failed import says which records it
// wrote and resumes from the line it names.
func TestExportImport(t *testing.T) {
	src := testbed.NewCluster(t, testbed.Options{})
	dst := testbed.NewCluster(t, testbed.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ks := newKeys(t, src)
	for _, kv := range [][2]string{{"/app/a", "1"}, {"/app/b", "two words"}, {"/app/sub/c", "{\"json\":true}"},
		{"/app/_hidden/h", "secret"}, {"/app/_meta", "m"}, {"/other", "o"}} {
		_, err := ks.Set(ctx, kv[0], kv[1], nil)
		require.NoError(t, err)
	}
	_, err := ks.Set(ctx, "/app/ttl", "t", &client.SetOptions{TTL: time.Hour})
	require.NoError(t, err)
	_, err = ks.Set(ctx, "/app/empty", "", &client.SetOptions{Dir: true})
	require.NoError(t, err)
	_, err = ks.Set(ctx, "/app/tdir", "", &client.SetOptions{Dir: true, TTL: time.Hour})
	require.NoError(t, err)
	_, err = ks.CreateInOrder(ctx, "/app/queue", "job", nil)
	require.NoError(t, err)

	srcEP := "--endpoints=" + src.ClientURLs()[0]
	dstEP := "--endpoints=" + dst.ClientURLs()[0]
	exp, errOut, code := ctl(t, "", srcEP, "export", "/app", "/app/_hidden", "/app/_meta")
	require.Equal(t, 0, code, errOut)
	require.Empty(t, errOut, "no progress output when not on a terminal")
	recs := readRecords(t, exp)
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.Key)
	}
	queue := recs[len(recs)-1].Key // filled in below
	for _, r := range recs {
		if strings.HasPrefix(r.Key, "/app/queue/") {
			queue = r.Key
		}
	}
	require.Equal(t, []string{"/app", "/app/a", "/app/b", "/app/empty", "/app/queue", queue, "/app/sub", "/app/sub/c",
		"/app/tdir", "/app/ttl", "/app/_hidden", "/app/_hidden/h", "/app/_meta"}, keys)

	out, errOut, code := ctl(t, exp, dstEP, "import")
	require.Equal(t, 0, code, errOut)
	var written []string
	for i, k := range keys {
		written = append(written, fmt.Sprintf("%d %s", i+1, k))
	}
	gotWritten := strings.Split(strings.TrimSpace(out), "\n")
	require.ElementsMatch(t, written, gotWritten)

	again, errOut, code := ctl(t, "", dstEP, "export", "/app", "/app/_hidden", "/app/_meta")
	require.Equal(t, 0, code, errOut)
	recs2 := readRecords(t, again)
	require.Len(t, recs2, len(recs))
	for i := range recs {
		a, b := recs[i], recs2[i]
		require.Equal(t, a.Key, b.Key)
		require.Equal(t, a.Dir, b.Dir, a.Key)
		require.Equal(t, a.Value, b.Value, a.Key)
		require.Equal(t, a.TTL > 0, b.TTL > 0, a.Key)
		require.LessOrEqual(t, a.TTL-b.TTL, int64(60), a.Key)
		require.LessOrEqual(t, b.TTL, a.TTL, a.Key)
	}

	// Importing again over what is there: directories are kept as they
	// are.
	_, errOut, code = ctl(t, exp, dstEP, "import")
	require.Equal(t, 0, code, errOut)
	dk := newKeys(t, dst)
	resp, err := dk.Get(ctx, "/app/tdir", nil)
	require.NoError(t, err)
	require.True(t, resp.Node.Dir)
	require.Greater(t, resp.Node.TTL, int64(3000))
	resp, err = dk.Get(ctx, "/app/empty", nil)
	require.NoError(t, err)
	require.True(t, resp.Node.Dir)
	require.Zero(t, resp.Node.TTL)

	// A key where the export has a directory stops the import.
	dst2 := testbed.NewCluster(t, testbed.Options{})
	_, err = newKeys(t, dst2).Set(ctx, "/app/sub", "blocker", nil)
	require.NoError(t, err)
	dst2EP := "--endpoints=" + dst2.ClientURLs()[0]
	out, errOut, code = ctl(t, exp, dst2EP, "import", "--concurrency", "1")
	require.Equal(t, 4, code, errOut)
	subLine := 7 // "/app/sub"
	require.Contains(t, errOut, fmt.Sprintf("line %d (/app/sub)", subLine))
	require.Contains(t, errOut, fmt.Sprintf("resume with: import --from-line %d", subLine))
	require.Equal(t, strings.Join(written[:subLine-1], "\n")+"\n", out)

	_, err = newKeys(t, dst2).Delete(ctx, "/app/sub", nil)
	require.NoError(t, err)
	out, errOut, code = ctl(t, exp, dst2EP, "import", "--from-line", strconv.Itoa(subLine))
	require.Equal(t, 0, code, errOut)
	require.ElementsMatch(t, written[subLine-1:], strings.Split(strings.TrimSpace(out), "\n"))
	again2, _, code := ctl(t, "", dst2EP, "export", "/app", "/app/_hidden", "/app/_meta")
	require.Equal(t, 0, code)
	require.Len(t, readRecords(t, again2), len(recs))
}

// TestPasswordFlag checks --password and ETCDCTL_PASSWORD, which etcdctl v2
// lacked, against a cluster with auth enabled and no guest access.
func TestPasswordFlag(t *testing.T) {
	c := testbed.NewCluster(t, testbed.Options{})
	ep := "--endpoints=" + c.ClientURLs()[0]
	for _, args := range [][]string{
		{ep, "user", "add", "root:rootpw"},
		{ep, "--username", "root:rootpw", "auth", "enable"},
		{ep, "--username", "root:rootpw", "role", "revoke", "--path", "/*", "--rw", "guest"},
		{ep, "--username", "root:rootpw", "set", "/x", "1"},
	} {
		_, errOut, code := ctl(t, "", args...)
		require.Equal(t, 0, code, "%v: %s", args, errOut)
	}
	out, errOut, code := ctl(t, "", ep, "--username", "root", "--password", "rootpw", "get", "/x")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "1\n", out, "no prompt")

	cmd := exec.Command(ctlBinary(t), ep, "-u", "root", "get", "/x")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "ETCDCTL_PASSWORD=rootpw"}
	b, err := cmd.Output()
	require.NoError(t, err)
	require.Equal(t, "1\n", string(b))

	_, errOut, code = ctl(t, "", ep, "--username", "root", "--password", "wrong", "get", "/x")
	require.Equal(t, 4, code)
	require.Contains(t, errOut, "Error:  110: The request requires user authentication (Insufficient credentials)")
	require.NotContains(t, errOut, "wrong")
	_, errOut, code = ctl(t, "", ep, "get", "/x")
	require.Equal(t, 4, code)
	require.Contains(t, errOut, "Error:  110:")
}

// TestProgressOnTerminal checks that export and import show a progress
// line when standard error is a terminal (script(1) provides one) and keep
// standard output for the data.
func TestProgressOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) not installed")
	}
	c := testbed.NewCluster(t, testbed.Options{})
	kapi := newKeys(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < 5; i++ {
		_, err := kapi.Set(ctx, fmt.Sprintf("/p/k%d", i), "v", nil)
		require.NoError(t, err)
	}
	dir := t.TempDir()
	file := dir + "/export.jsonl"
	ep := "--endpoints=" + c.ClientURLs()[0]
	run := func(shell string) string {
		cmd := exec.CommandContext(ctx, scriptBin, "-qec", shell, "/dev/null")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TERM=dumb", "BIN=" + ctlBinary(t), "EP=" + ep, "FILE=" + file}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	out := run(`"$BIN" "$EP" export /p > "$FILE"`)
	require.Contains(t, out, "exported 6 records")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Len(t, readRecords(t, string(b)), 6)
	require.NotContains(t, string(b), "exported")

	out = run(`"$BIN" "$EP" import < "$FILE" > "$FILE.written"`)
	require.Contains(t, out, "imported 6 records")
}

// TestMalformedEndpointRedacted checks that an endpoint URL that does not
// parse is reported without its user information: etcdctl v2 printed the
// URL as it was, password included.
func TestMalformedEndpointRedacted(t *testing.T) {
	for _, tc := range []struct {
		ep      string
		secrets []string
	}{
		{"http://root:top%zzsecret@127.0.0.1:23790", []string{"secret", "top%", "%zz"}},
		{"http://root:se/cret@127.0.0.1:23790", []string{"cret", ":se"}},
		{"root:top%zzsecret@127.0.0.1:23790", []string{"secret", "top%", "%zz"}},
		{"http://127.0.0.1:1,http://root:top%zzsecret@127.0.0.1:23790", []string{"secret", "top%", "%zz"}},
	} {
		for _, args := range [][]string{
			{"--endpoints", tc.ep, "get", "/foo"},
			{"--no-sync", "--peers", tc.ep, "member", "list"},
		} {
			out, errOut, code := ctl(t, "", args...)
			require.Equal(t, 1, code, "%q: stdout %q, stderr %q", args, out, errOut)
			require.Contains(t, errOut, "[redacted]", "%q", args)
			for _, s := range tc.secrets {
				require.NotContains(t, out+errOut, s, "%q", args)
			}
		}
	}
}
