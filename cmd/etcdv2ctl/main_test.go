package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/internal/leakcheck"
)

// binDir holds the binaries built for this test run (see TestMain).
var binDir string

// TestMain builds etcdv2ctl and, for the comparison with the original,
// etcd 3.5's etcdctl (the version pinned by this module's "tool"
// directive), runs the tests and removes the binaries.
func TestMain(m *testing.M) {
	if pids := testbed.ReapLeftovers(); len(pids) > 0 {
		fmt.Fprintf(os.Stderr, "testbed: killed leftover etcd processes %v\n", pids)
	}
	dir, err := os.MkdirTemp("", "etcdv2ctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := leakcheck.Check(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// binary builds the Go package pkg of this module once per test run and
// returns the path of the executable.
func binary(t testing.TB, name, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	out := filepath.Join(binDir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, buf.String())
	}
	t.Logf("built %s in %s", pkg, time.Since(start).Round(time.Millisecond))
	built[name] = out
	return out
}

// ctlBinary is the etcdv2ctl under test.
func ctlBinary(t testing.TB) string { return binary(t, "etcdv2ctl", ".") }

// etcdctlBinary is etcd 3.5's etcdctl, the reference.
func etcdctlBinary(t testing.TB) string {
	return binary(t, "etcdctl", "go.etcd.io/etcd/etcdctl/v3")
}
