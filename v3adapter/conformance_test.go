package v3adapter_test

import (
	"testing"

	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
	"github.com/etcdv2/client/v3adapter/conformance"
)

// knownDifferences are the transcript lines where the adapter answers
// differently from a v2 server on purpose; docs/v3adapter.md explains each.
var knownDifferences = map[string]string{
	"watch/20": "hidden keys are left out of recursive watches also when read from history, as v2 does for live watchers",
	"expire/1": "a watch answer's index is the revision when the answer was made; v2's is the index when the watch was registered",
}

// TestConformance runs the shared KeysAPI scenarios on the native v2 client
// (etcd 3.5) and on the adapter over etcd 3.5, 3.6 and 3.7, and compares
// the transcripts.
func TestConformance(t *testing.T) {
	t.Parallel()
	c35 := testbed.NewCluster(t, testbed.Options{})
	c36 := testbed.NewCluster(t, testbed.Options{Version: "3.6"})
	c37 := testbed.NewCluster(t, testbed.Options{Version: "3.7"})
	conformance.Run(t, []conformance.Target{
		{Name: "v2@3.5", KAPI: newV2(t, c35)},
		{Name: "adapter@3.5", KAPI: v3adapter.NewKeysAPI(newV3(t, c35))},
		{Name: "adapter@3.6", KAPI: v3adapter.NewKeysAPI(newV3(t, c36))},
		{Name: "adapter@3.7", KAPI: v3adapter.NewKeysAPI(newV3(t, c37), v3adapter.WithPrefix("/other/"))},
	}, knownDifferences)
}
