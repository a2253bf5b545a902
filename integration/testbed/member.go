package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Member is one etcd process of a Cluster. Its data directory, ports and
// proxies stay the same across Kill and Restart.
type Member struct {
	c                      *Cluster
	name                   string
	dataDir, logPath       string
	clientPort, peerPort   int
	clientProxy, peerProxy *Proxy
	args                   []string // command line, fixed at first start
	serverCert, peerCert   KeyPair  // with Options.ClientTLS, PeerTLS

	mu      sync.Mutex
	id      string
	cmd     *exec.Cmd
	pid     int
	exited  chan struct{} // closed when the current process was reaped; nil before first start
	waitErr error
	stopped bool // SIGSTOPped
}

// Name returns the member's etcd --name ("m0", "m1", ...).
func (m *Member) Name() string { return m.name }

// ID returns the member id in hex as /v2/members reports it, or "" if it is
// not known yet.
func (m *Member) ID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

func (m *Member) setID(id string) {
	m.mu.Lock()
	m.id = id
	m.mu.Unlock()
}

func (m *Member) clientAddr() string { return "127.0.0.1:" + strconv.Itoa(m.clientPort) }
func (m *Member) peerAddr() string   { return "127.0.0.1:" + strconv.Itoa(m.peerPort) }

// ClientURL returns the member's own client URL (bypassing any proxy).
func (m *Member) ClientURL() string { return m.c.clientScheme() + "://" + m.clientAddr() }

// URL returns the URL clients should use for this member: the client
// proxy's URL with Options.ProxyClients, else ClientURL. It is also what
// the member advertises as its client URL.
func (m *Member) URL() string {
	if m.clientProxy != nil {
		return m.clientProxy.URL()
	}
	return m.ClientURL()
}

// PeerURL returns the peer URL the member advertises and is known by in
// the cluster: its peer proxy's URL with Options.ProxyPeers, else the URL
// it listens on.
func (m *Member) PeerURL() string {
	if m.peerProxy != nil {
		return m.peerProxy.URL()
	}
	return m.c.peerScheme() + "://" + m.peerAddr()
}

// LogPath returns the file receiving the member's stdout and stderr (all
// runs appended).
func (m *Member) LogPath() string { return m.logPath }

// DataDir returns the member's --data-dir.
func (m *Member) DataDir() string { return m.dataDir }

// PID returns the process id of the member's current or last process, or 0
// before it was started.
func (m *Member) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pid
}

// Proxy returns the client-side fault proxy (Options.ProxyClients) or nil.
func (m *Member) Proxy() *Proxy { return m.clientProxy }

// PeerProxy returns the proxy in front of the member's peer port
// (Options.ProxyPeers) or nil. Isolate and Rejoin drive it.
func (m *Member) PeerProxy() *Proxy { return m.peerProxy }

func (m *Member) buildArgs(initialCluster, state string) []string {
	o := m.c.opts
	args := []string{
		"--name=" + m.name,
		"--data-dir=" + m.dataDir,
		"--listen-client-urls=" + m.ClientURL(),
		"--advertise-client-urls=" + m.URL(),
		"--listen-peer-urls=" + m.c.peerScheme() + "://" + m.peerAddr(),
		"--initial-advertise-peer-urls=" + m.PeerURL(),
		"--initial-cluster=" + initialCluster,
		"--initial-cluster-state=" + state,
		"--initial-cluster-token=" + m.c.token,
		"--heartbeat-interval=" + strconv.Itoa(o.HeartbeatMS),
		"--election-timeout=" + strconv.Itoa(o.ElectionMS),
		"--logger=zap",
		"--log-outputs=stderr",
	}
	args = append(args, m.tlsArgs()...)
	if !m.c.v3only() {
		args = append(args, "--enable-v2=true") // 3.6+ refuse the flag
	}
	return append(args, o.ExtraArgs...)
}

// start launches a new process with m.args; the previous one must be gone.
func (m *Member) start() error {
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close() // the child keeps its own descriptor
	fmt.Fprintf(log, "==== testbed: starting %s at %s: %s %s\n", m.name, time.Now().Format(time.RFC3339Nano), m.c.bin, strings.Join(m.args, " "))
	cmd := exec.Command(m.c.bin, m.args...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = os.Environ()
	if err := startChild(cmd); err != nil {
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	pidFile, _ := recordPID(cmd.Process.Pid, m.c.bin)
	exited := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.pid, m.exited, m.waitErr, m.stopped = cmd, cmd.Process.Pid, exited, nil, false
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		if pidFile != "" {
			os.Remove(pidFile)
		}
		m.mu.Lock()
		m.waitErr = err
		m.mu.Unlock()
		childDone()
		close(exited)
	}()
	return nil
}

// alive reports whether the member's process has been started and not yet
// reaped.
func (m *Member) alive() bool {
	m.mu.Lock()
	ch := m.exited
	m.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// Running reports whether the member's process is alive and not stopped
// with SIGSTOP.
func (m *Member) Running() bool { return m.alive() && !m.isStopped() }

func (m *Member) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

// exitError describes an unexpected exit, marking port conflicts with
// errBind.
func (m *Member) exitError() error {
	m.mu.Lock()
	werr := m.waitErr
	m.mu.Unlock()
	tail := m.LogTail(30)
	err := fmt.Errorf("%s exited: %v\n%s", m.name, werr, tail)
	if strings.Contains(tail, "address already in use") {
		return errors.Join(errBind, err)
	}
	return err
}

// kill sends SIGKILL to the current process (if any) and waits for it to be
// reaped.
func (m *Member) kill() error {
	m.mu.Lock()
	cmd, ch := m.cmd, m.exited
	m.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-ch:
		m.mu.Lock()
		m.stopped = false
		m.mu.Unlock()
		return nil
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", m.name, cmd.Process.Pid)
	}
}

// Kill sends SIGKILL to the member's process and waits until it has exited.
// It is a no-op if the process is not running.
func (m *Member) Kill(tb testing.TB) {
	tb.Helper()
	if err := m.kill(); err != nil {
		tb.Fatalf("testbed: Kill: %v", err)
	}
}

func (m *Member) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	m.mu.Lock()
	cmd, ch := m.cmd, m.exited
	m.mu.Unlock()
	if ch == nil || !m.alive() {
		tb.Fatalf("testbed: %s: process not running", m.name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("testbed: %s: %v: %v", m.name, sig, err)
	}
}

// Stop sends SIGSTOP and waits (up to 5 s) until the kernel reports the
// process stopped: it then hangs, while the kernel still completes TCP
// handshakes on its listening ports. WaitHealthy and Leader skip a stopped
// member until Continue.
func (m *Member) Stop(tb testing.TB) {
	tb.Helper()
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.signal(tb, syscall.SIGSTOP)
	if err := waitProcState(m.PID(), true); err != nil {
		tb.Fatalf("testbed: Stop %s: %v", m.name, err)
	}
}

// Continue sends SIGCONT to a member stopped with Stop and waits (up to
// 5 s) until the kernel reports it running again.
func (m *Member) Continue(tb testing.TB) {
	tb.Helper()
	m.signal(tb, syscall.SIGCONT)
	if err := waitProcState(m.PID(), false); err != nil {
		tb.Fatalf("testbed: Continue %s: %v", m.name, err)
	}
	m.mu.Lock()
	m.stopped = false
	m.mu.Unlock()
}

// waitProcState polls /proc/<pid>/stat every 5 ms (signal delivery is
// asynchronous and not otherwise observable) until the process is stopped
// ("T") or not, for at most 5 s.
func waitProcState(pid int, stopped bool) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return err
		}
		// The state follows the parenthesised command name.
		s := string(b)
		var state byte
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
			state = s[i+2]
		}
		if (state == 'T') == stopped {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d: state %q after 5s", pid, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Restart starts the member again with the same command line, data
// directory and ports (a still running process is killed first), then
// waits until it serves: GET /version answers 200, which etcd does only
// once the member has rejoined the cluster (so it needs a quorum). Call
// Cluster.WaitHealthy to wait for the whole cluster. Failure is fatal to tb.
func (m *Member) Restart(tb testing.TB) {
	tb.Helper()
	m.RestartNoWait(tb)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout(1))
	defer cancel()
	if err := m.waitServing(ctx, "/version"); err != nil {
		tb.Fatalf("testbed: Restart %s: %v\n%s", m.name, err, m.LogTail(30))
	}
}

// RestartNoWait is Restart without waiting for the member to serve (for
// example when the cluster has lost its quorum).
func (m *Member) RestartNoWait(tb testing.TB) {
	tb.Helper()
	if err := m.kill(); err != nil {
		tb.Fatalf("testbed: Restart: %v", err)
	}
	if err := m.start(); err != nil {
		tb.Fatalf("testbed: Restart: %v", err)
	}
}

// waitServing polls path on the member's direct URL every 50 ms until it
// answers 200, the process exits or ctx is done.
func (m *Member) waitServing(ctx context.Context, path string) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		if !m.alive() {
			return m.exitError()
		}
		st, b, err := m.c.do(ctx, http.MethodGet, m.ClientURL()+path, nil, 2*time.Second)
		if err == nil && st == http.StatusOK {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("GET %s: %d %s", path, st, bytes.TrimSpace(b))
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not serving: %w (last: %v)", m.name, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// Isolate cuts the member off from its peers in both directions; it needs
// Options.ProxyPeers. All peer traffic into a member passes its peer proxy
// (that URL is what the cluster knows it by), so:
//
//   - inbound: the member's own peer proxy is black-holed and its open
//     connections are reset, so nothing reaches it;
//   - outbound: the peer proxies of all other members reset every open
//     connection, and refuse (RST) every new one, whose client socket
//     belongs to the isolated member's process. The owner is found from
//     /proc/net/tcp and /proc/<pid>/fd, since all members share 127.0.0.1.
//
// etcd's raft messages travel both ways over connections dialed by either
// side (stream and pipeline), which is why both halves are needed. Client
// traffic is not affected: the member keeps answering plain (non-quorum)
// reads from its now stale store, while its /health turns 503 once it
// notices it has no leader (about one election timeout).
func (m *Member) Isolate(tb testing.TB) {
	tb.Helper()
	if m.peerProxy == nil {
		tb.Fatalf("testbed: Isolate needs Options.ProxyPeers")
	}
	m.c.mu.Lock()
	m.c.isolated[m] = true
	m.c.mu.Unlock()
	m.peerProxy.BlackHole(true)
	m.peerProxy.ResetAll()
	m.c.applyIsolation()
}

// Rejoin undoes Isolate: the member's peer proxy forwards again (its
// silenced connections are reset so etcd redials at once) and the other
// proxies stop refusing its connections. The member then catches up by
// itself; use Cluster.WaitHealthy to wait for that.
func (m *Member) Rejoin(tb testing.TB) {
	tb.Helper()
	if m.peerProxy == nil {
		tb.Fatalf("testbed: Rejoin needs Options.ProxyPeers")
	}
	m.c.mu.Lock()
	delete(m.c.isolated, m)
	m.c.mu.Unlock()
	m.peerProxy.BlackHole(false)
	m.peerProxy.ResetAll()
	m.c.applyIsolation()
}

func (m *Member) closeProxies() {
	if m.clientProxy != nil {
		m.clientProxy.Close()
	}
	if m.peerProxy != nil {
		m.peerProxy.Close()
	}
}

// LogTail returns the last n lines of the member's log file (each cut to
// 400 bytes).
func (m *Member) LogTail(n int) string {
	f, err := os.Open(m.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 128 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 400 {
			lines[i] = l[:400] + "…"
		}
	}
	return strings.Join(lines, "\n")
}
