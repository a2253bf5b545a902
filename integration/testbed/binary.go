package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EtcdPackage is the Go package path of the etcd server main package that
// EtcdBinary builds. Its version is pinned by the integration module's
// go.mod (a "tool" directive) and go.sum.
const EtcdPackage = "go.etcd.io/etcd/server/v3"

// EnvEtcdBin names the environment variable that, when set, makes
// EtcdBinary return its value instead of building etcd (for example
// ETCD_BIN=/usr/bin/etcd to run the suite against Debian's etcd-server).
const EnvEtcdBin = "ETCD_BIN"

// buildTimeout bounds one build of the etcd binary, including waiting for
// another process that holds the build lock.
const buildTimeout = 8 * time.Minute

var (
	binMu   sync.Mutex
	binPath string
)

// EtcdBinary returns the path of an etcd server binary.
//
// If the environment variable ETCD_BIN is set, its value is returned
// unchanged (the file must exist). Otherwise the etcd 3.5 server main package
// (EtcdPackage, version pinned by integration/go.mod and go.sum) is built
// with "go build" the first time and cached in
//
//	<os.UserCacheDir()>/etcdv2-client-testbed/<key>/etcd
//
// where key is derived from the sha256 of integration/go.sum plus GOOS and
// GOARCH. The build writes to a temporary file that is renamed into place,
// and holds an exclusive flock on <key>/build.lock, so test packages running
// in parallel build it only once. The build duration is logged with
// tb.Logf. Any failure is fatal to tb.
func EtcdBinary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvEtcdBin); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("testbed: %s=%q: %v", EnvEtcdBin, p, err)
		}
		return p
	}
	binMu.Lock()
	defer binMu.Unlock()
	if binPath != "" {
		return binPath
	}
	p, err := buildEtcd(tb)
	if err != nil {
		tb.Fatalf("testbed: building etcd: %v", err)
	}
	binPath = p
	return p
}

// moduleDir returns the directory of the integration module (the one holding
// go.mod and go.sum).
func moduleDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Dir(filepath.Dir(file))
		if _, err := os.Stat(filepath.Join(dir, "go.sum")); err == nil {
			return dir, nil
		}
	}
	// Built with -trimpath or moved: ask the go command.
	out, err := exec.Command(goTool(), "list", "-m", "-f", "{{.Dir}}", "github.com/etcdv2/client/integration").Output()
	if err != nil {
		return "", fmt.Errorf("locating the integration module: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", errors.New("locating the integration module: empty answer from go list")
	}
	return dir, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// cacheKey derives the cache directory name from go.sum, GOOS and GOARCH.
func cacheKey(modDir string) (string, error) {
	sum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(sum)
	fmt.Fprintf(h, "\x00%s\x00%s\x00%s", runtime.GOOS, runtime.GOARCH, EtcdPackage)
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

// cacheRoot is the directory under which binaries and PID files live.
func cacheRoot() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "etcdv2-client-testbed")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func buildEtcd(tb testing.TB) (string, error) {
	modDir, err := moduleDir()
	if err != nil {
		return "", err
	}
	return buildEtcdIn(tb, modDir)
}

// buildEtcdIn builds EtcdPackage as pinned by the module in modDir and
// caches it under a key derived from that module's go.sum.
func buildEtcdIn(tb testing.TB, modDir string) (string, error) {
	key, err := cacheKey(modDir)
	if err != nil {
		return "", err
	}
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "etcd")
	if isExecutable(bin) {
		return bin, nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	unlock, err := lockFile(ctx, filepath.Join(dir, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // another process built it while we waited
		return bin, nil
	}

	tmp, err := os.CreateTemp(dir, "etcd-*.tmp")
	if err != nil {
		return "", err
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // no-op after a successful rename

	start := time.Now()
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", tmpName, EtcdPackage)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s in %s: %v\n%s", EtcdPackage, modDir, err, out.String())
	}
	if err := os.Chmod(tmpName, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmpName, bin); err != nil {
		return "", err
	}
	tb.Logf("testbed: built %s into %s in %s", EtcdPackage, bin, time.Since(start).Round(time.Millisecond))
	return bin, nil
}

// lockFile takes an exclusive flock on path, polling until ctx is done.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}
