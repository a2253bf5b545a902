package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// versionModules maps Options.Version to the directory (relative to this
// package) of the small module that pins that etcd server release with a
// "tool" directive. Each module has its own go.mod and go.sum, so the
// integration module's dependencies do not move.
var versionModules = map[string]string{
	"3.6": "etcd36", // go.etcd.io/etcd/server/v3 v3.6.x
	"3.7": "etcd37", // go.etcd.io/etcd/server/v3 v3.7.x
}

var (
	versionMu   sync.Mutex
	versionBins = map[string]string{}
)

// EtcdBinaryVersion returns the path of an etcd server binary of the given
// release: "" is EtcdBinary (3.5, honouring ETCD_BIN); "3.6" and "3.7" are
// built from the modules under integration/testbed/etcd36 and etcd37 the
// first time and cached like EtcdBinary (keyed by that module's go.sum).
// An unknown version or a failed build is fatal to tb.
func EtcdBinaryVersion(tb testing.TB, version string) string {
	tb.Helper()
	if version == "" {
		return EtcdBinary(tb)
	}
	sub, ok := versionModules[version]
	if !ok {
		tb.Fatalf("testbed: unknown etcd version %q", version)
	}
	versionMu.Lock()
	defer versionMu.Unlock()
	if p := versionBins[version]; p != "" {
		return p
	}
	dir, err := versionModuleDir(sub)
	if err != nil {
		tb.Fatalf("testbed: etcd %s: %v", version, err)
	}
	p, err := buildEtcdIn(tb, dir)
	if err != nil {
		tb.Fatalf("testbed: building etcd %s: %v", version, err)
	}
	versionBins[version] = p
	return p
}

func versionModuleDir(sub string) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir := filepath.Join(filepath.Dir(file), sub)
		if _, err := os.Stat(filepath.Join(dir, "go.sum")); err == nil {
			return dir, nil
		}
	}
	mod, err := moduleDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(mod, "testbed", sub)
	if _, err := os.Stat(filepath.Join(dir, "go.sum")); err != nil {
		return "", err
	}
	return dir, nil
}

// v3only reports whether the cluster's members serve only the v3 API.
func (c *Cluster) v3only() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.Version != "" || c.v3api
}

// v3Post sends a JSON request to the v3 gRPC gateway of m (direct URL).
func (c *Cluster) v3Post(ctx context.Context, m *Member, path string, out any) error {
	st, b, err := c.do(ctx, http.MethodPost, m.ClientURL()+path, []byte("{}"), 2*time.Second)
	if err != nil {
		return fmt.Errorf("%s %s: %w", m.name, path, err)
	}
	if st != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", m.name, path, st, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %v", m.name, path, err)
	}
	return nil
}

// hexID renders a v3 member id (a decimal string in the gateway's JSON) the
// way /v2/members does.
func hexID(dec string) (string, error) {
	n, err := strconv.ParseUint(dec, 10, 64)
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(n, 16), nil
}

func (c *Cluster) memberLeaderV3(ctx context.Context, m *Member) (string, error) {
	var st struct {
		Leader string `json:"leader"`
	}
	if err := c.v3Post(ctx, m, "/v3/maintenance/status", &st); err != nil {
		return "", err
	}
	if st.Leader == "" || st.Leader == "0" {
		return "", fmt.Errorf("%s: no leader", m.name)
	}
	return hexID(st.Leader)
}

func (c *Cluster) refreshIDsV3(ctx context.Context) error {
	var last error
	for _, m := range c.running() {
		var ml struct {
			Members []struct {
				ID       string   `json:"ID"`
				Name     string   `json:"name"`
				PeerURLs []string `json:"peerURLs"`
			} `json:"members"`
		}
		if err := c.v3Post(ctx, m, "/v3/cluster/member/list", &ml); err != nil {
			last = err
			continue
		}
		for _, j := range ml.Members {
			id, err := hexID(j.ID)
			if err != nil {
				return err
			}
			for _, mm := range c.Members() {
				match := mm.name == j.Name
				for _, u := range j.PeerURLs {
					match = match || u == mm.PeerURL()
				}
				if match {
					mm.setID(id)
				}
			}
		}
		return nil
	}
	if last == nil {
		last = errors.New("no running member")
	}
	return last
}

// DisableV2 restarts every member, one at a time, without --enable-v2 and
// waits after each until the cluster is healthy; from then on the test bed
// talks to the members through the v3 gateway. (A 3.5 member with v2
// enabled answers /health with a quorum read through the v2 store, a raft
// entry that etcd 3.6 refuses to replay.) Failure is fatal to tb.
func (c *Cluster) DisableV2(tb testing.TB) {
	tb.Helper()
	c.mu.Lock()
	version := c.opts.Version
	c.mu.Unlock()
	c.Upgrade(tb, version)
}

// Upgrade restarts every member, one at a time, on the etcd release version
// (as Options.Version: "" 3.5, "3.6", "3.7") with the same data directory,
// ports and flags minus --enable-v2, waiting after each until the cluster is
// healthy. From then on the test bed talks to the members through the v3
// gateway, which 3.5 serves too, so mixed clusters are handled. Failure is
// fatal to tb.
func (c *Cluster) Upgrade(tb testing.TB, version string) {
	tb.Helper()
	bin := EtcdBinaryVersion(tb, version)
	c.mu.Lock()
	c.bin = bin
	c.opts.Version = version
	c.v3api = true
	c.mu.Unlock()
	for _, m := range c.Members() {
		args := make([]string, 0, len(m.args))
		for _, a := range m.args {
			if a != "--enable-v2=true" {
				args = append(args, a)
			}
		}
		m.args = args
		m.Restart(tb)
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout(len(c.Members())))
		err := c.WaitHealthy(ctx)
		cancel()
		if err != nil {
			tb.Fatalf("testbed: Upgrade to %q: %s: %v\n%s", version, m.name, err, m.LogTail(30))
		}
	}
}
