package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Child processes are forked from a dedicated goroutine locked to its own OS
// thread. Linux delivers Pdeathsig when the *thread* that forked a child
// exits, not the process, so forking from arbitrary goroutines (whose
// threads the Go runtime may retire) could kill members at random, and
// forking from a thread that lives as long as the test binary guarantees
// that members die with it (also when "go test -timeout" panics).
//
// The forker goroutine exists only while at least one child started
// through it is alive: when the last child has been reaped it returns
// without unlocking its thread, which the runtime then terminates. This
// keeps goroutine-leak checks in TestMain clean after every Cluster is
// closed.

type startReq struct {
	cmd  *exec.Cmd
	errc chan error
}

type forker struct {
	reqs chan startReq
	quit chan struct{}
}

var (
	forkMu   sync.Mutex
	forkCur  *forker
	forkLive int // children started (or being started) and not yet reaped
)

func (f *forker) loop() {
	runtime.LockOSThread()
	// Deliberately no UnlockOSThread: the thread dies with this goroutine.
	for {
		select {
		case r := <-f.reqs:
			r.errc <- r.cmd.Start()
		case <-f.quit:
			return
		}
	}
}

// startChild starts cmd with Pdeathsig=SIGKILL from the forker thread. On
// success the caller must call childDone exactly once after cmd.Wait
// returned.
func startChild(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL

	forkMu.Lock()
	if forkCur == nil {
		forkCur = &forker{reqs: make(chan startReq), quit: make(chan struct{})}
		go forkCur.loop()
	}
	f := forkCur
	forkLive++
	forkMu.Unlock()

	errc := make(chan error, 1)
	f.reqs <- startReq{cmd: cmd, errc: errc}
	if err := <-errc; err != nil {
		childDone()
		return err
	}
	return nil
}

// childDone records that a child started by startChild has been reaped.
func childDone() {
	forkMu.Lock()
	defer forkMu.Unlock()
	forkLive--
	if forkLive == 0 && forkCur != nil {
		close(forkCur.quit)
		forkCur = nil
	}
}

// PID files: one file per child, named <owner pid>.<child pid>, holding the
// binary path. It is removed when the child has been reaped. A file whose
// owner is gone marks a possible leftover.

func pidDir() (string, error) {
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "pids")
	return dir, os.MkdirAll(dir, 0o755)
}

func pidFileName(child int) (string, error) {
	dir, err := pidDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, fmt.Sprintf("%d.%d", os.Getpid(), child)), nil
}

func recordPID(child int, bin string) (string, error) {
	name, err := pidFileName(child)
	if err != nil {
		return "", err
	}
	return name, os.WriteFile(name, []byte(bin+"\n"), 0o644)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// cmdlineHas reports whether /proc/<pid>/cmdline contains bin.
func cmdlineHas(pid int, bin string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte(bin))
}

// ReapLeftovers kills etcd processes recorded by earlier test binaries that
// are no longer running (for example ones killed with SIGKILL before they
// could clean up, on a kernel where Pdeathsig did not fire). A process is
// killed only if its /proc/<pid>/cmdline still contains the recorded binary
// path, so a reused PID is left alone. It returns the PIDs it killed. Call it
// from TestMain (Main does), before m.Run.
func ReapLeftovers() []int {
	dir, err := pidDir()
	if err != nil {
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var killed []int
	for _, e := range ents {
		owner, child, ok := strings.Cut(e.Name(), ".")
		if !ok {
			continue
		}
		op, err1 := strconv.Atoi(owner)
		cp, err2 := strconv.Atoi(child)
		if err1 != nil || err2 != nil {
			continue
		}
		if op != os.Getpid() && processAlive(op) {
			continue // its owner still runs and will clean up
		}
		if op == os.Getpid() {
			continue // ours
		}
		full := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(full)
		bin := strings.TrimSpace(string(b))
		if err == nil && bin != "" && processAlive(cp) && cmdlineHas(cp, bin) {
			if syscall.Kill(cp, syscall.SIGKILL) == nil {
				killed = append(killed, cp)
			}
		}
		os.Remove(full)
	}
	return killed
}

// Socket ownership, used by peer proxies to tell which member opened a
// connection. All members talk over loopback, so the source address does not
// identify them; the kernel's socket table does.

// tcpInode finds the inode of the TCP socket whose local end is local and
// remote end is remote, from /proc/net/tcp (IPv4) and /proc/net/tcp6.
func tcpInode(local, remote string) (string, error) {
	lh, lp, err := hexAddr(local)
	if err != nil {
		return "", err
	}
	rh, rp, err := hexAddr(remote)
	if err != nil {
		return "", err
	}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			if matchHexAddr(f[1], lh, lp) && matchHexAddr(f[2], rh, rp) {
				return f[9], nil
			}
		}
	}
	return "", fmt.Errorf("no socket %s -> %s", local, remote)
}

// hexAddr renders host:port the way /proc/net/tcp shows an IPv4 address:
// little-endian hex IP and big-endian hex port.
func hexAddr(hostport string) (ip4hex, porthex string, err error) {
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return "", "", err
	}
	ip := parseIPv4(host)
	if ip == nil {
		return "", "", fmt.Errorf("not IPv4: %s", host)
	}
	ip4hex = fmt.Sprintf("%02X%02X%02X%02X", ip[3], ip[2], ip[1], ip[0])
	return ip4hex, fmt.Sprintf("%04X", port), nil
}

func matchHexAddr(field, iphex, porthex string) bool {
	a, p, ok := strings.Cut(field, ":")
	if !ok || p != porthex {
		return false
	}
	if len(a) == 8 {
		return a == iphex
	}
	// IPv4-mapped IPv6: 0000000000000000FFFF0000<ip>
	return len(a) == 32 && strings.HasSuffix(a, iphex) && strings.HasPrefix(a, "0000000000000000FFFF0000")
}

// pidOwnsInode reports whether process pid has a descriptor for socket inode.
func pidOwnsInode(pid int, inode string) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	want := "socket:[" + inode + "]"
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
			return true
		}
	}
	return false
}
