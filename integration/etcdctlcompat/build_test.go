package etcdctlcompat_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// etcdctlModule is the etcdctl built twice.
const etcdctlModule = "go.etcd.io/etcd/etcdctl/v3@v3.5.35"

// discoverCall is the one line of etcdctl that does not compile against
// this library: v2.305 added a service-name argument to Discoverer.Discover.
const (
	discoverCall    = "eps, err := discoverer.Discover(domainstr, serviceName)"
	discoverOurCall = "eps, err := (&client.SRVDiscoverer{ServiceName: serviceName}).Discover(domainstr); _ = discoverer"
)

// localReplaces is the block of etcdctl's go.mod that points at the etcd
// repository's other modules (../api, ...), absent from the module zip.
var localReplaces = regexp.MustCompile(`(?s)replace \(\n\tgo\.etcd\.io/etcd/api/v3 => \.\./api.*?\n\)\n`)

// buildEtcdctls builds etcdctl against the official client and against
// this library (a copy of its root package under a go.mod that declares
// go.etcd.io/etcd/client/v2, put in with a replace directive) and returns
// the paths of the two binaries.
func buildEtcdctls(t *testing.T) (official, ours string) {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GO111MODULE=on")
	run := func(wd string, args ...string) []byte {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = wd, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(run(dir, "mod", "download", "-json", etcdctlModule), &mod); err != nil || mod.Dir == "" {
		t.Fatalf("locating %s: %v", etcdctlModule, err)
	}
	// go.sum of this module holds the etcd modules the zip's go.sum lacks.
	ourSums, err := os.ReadFile("../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	lib, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(lib, "go.mod")); err != nil || !bytes.HasPrefix(b, []byte("module github.com/etcdv2/client\n")) {
		t.Fatalf("the library is not at %s: %v", lib, err)
	}
	libCopy := filepath.Join(dir, "lib")
	copyPackage(t, lib, libCopy)
	// The root package's own internal packages come along, under the
	// copy's module path.
	internals, err := os.ReadDir(filepath.Join(lib, "internal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range internals {
		if e.IsDir() {
			copyPackage(t, filepath.Join(lib, "internal", e.Name()), filepath.Join(libCopy, "internal", e.Name()))
		}
	}
	writeFile(t, filepath.Join(libCopy, "go.mod"), "module go.etcd.io/etcd/client/v2\n\ngo 1.26.0\n")

	for _, side := range []string{"official", "ours"} {
		src := filepath.Join(dir, side)
		copyTree(t, mod.Dir, src)
		gomod := localReplaces.ReplaceAllString(readFile(t, filepath.Join(src, "go.mod")), "")
		if side == "ours" {
			gomod += "\nreplace go.etcd.io/etcd/client/v2 => " + libCopy + "\n"
			util := filepath.Join(src, "ctlv2", "command", "util.go")
			code := readFile(t, util)
			if strings.Count(code, discoverCall) != 1 {
				t.Fatalf("%s: the Discover call to adapt is not there", util)
			}
			writeFile(t, util, strings.Replace(code, discoverCall, discoverOurCall, 1))
		}
		writeFile(t, filepath.Join(src, "go.mod"), gomod)
		writeFile(t, filepath.Join(src, "go.sum"), readFile(t, filepath.Join(src, "go.sum"))+string(ourSums))
		run(src, "build", "-o", filepath.Join(dir, "etcdctl-"+side), ".")
	}
	return filepath.Join(dir, "etcdctl-official"), filepath.Join(dir, "etcdctl-ours")
}

// copyPackage copies the non-test Go files of the package in from to to,
// with imports of this library's internal packages moved to the copy's
// module path.
func copyPackage(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			code := strings.ReplaceAll(readFile(t, filepath.Join(from, n)), `"github.com/etcdv2/client/internal/`, `"go.etcd.io/etcd/client/v2/internal/`)
			writeFile(t, filepath.Join(to, n), code)
		}
	}
}

// copyTree copies a directory tree of regular files, writable.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
