package v3adapter_test

import (
	"log"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client/integration/testbed"
)

// exampleTB lets the examples start a test-bed cluster: the testing.TB
// methods the bed uses, with failures fatal to the example binary.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (e *exampleTB) Helper()                         {}
func (e *exampleTB) Log(args ...any)                 {}
func (e *exampleTB) Logf(format string, args ...any) {}
func (e *exampleTB) Failed() bool                    { return false }
func (e *exampleTB) Name() string                    { return "example" }
func (e *exampleTB) Cleanup(f func())                { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) Errorf(format string, args ...any) {
	log.Fatalf(format, args...)
}
func (e *exampleTB) Fatalf(format string, args ...any) { log.Fatalf(format, args...) }
func (e *exampleTB) Fatal(args ...any)                 { log.Fatal(args...) }
func (e *exampleTB) FailNow()                          { log.Fatal("example failed") }
func (e *exampleTB) TempDir() string {
	d, err := os.MkdirTemp("", "v3adapter-example-")
	if err != nil {
		log.Fatal(err)
	}
	e.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// close runs the cleanups, last registered first.
func (e *exampleTB) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

// exampleCluster starts a 1-member cluster of the given etcd release ("" is
// 3.5 with the v2 API) for an example and returns its client URLs and a
// function that stops it. A real program uses its cluster's URLs.
func exampleCluster(version string) ([]string, func()) {
	tb := &exampleTB{}
	c := testbed.NewCluster(tb, testbed.Options{Version: version})
	return c.ClientURLs(), tb.close
}

// exampleV3 returns a v3 client on endpoints.
func exampleV3(endpoints []string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		log.Fatal(err)
	}
	return cli
}
