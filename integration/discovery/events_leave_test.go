package discovery_test

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/events"
	"github.com/etcdv2/client/integration/backend"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/internal/leakcheck"
)

// sharedPolls counts the goroutines running a shared long poll of the
// native client.
func sharedPolls() int {
	n := 0
	for _, g := range leakcheck.Stacks() {
		if strings.Contains(g, "(*watchShare).run(") {
			n++
		}
	}
	return n
}

// storeWatchers returns the number of watchers the member holds.
func storeWatchers(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/v2/stats/store", nil)
	require.NoError(t, err)
	req.Close = true // no idle connection left behind
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var st struct {
		Watchers int `json:"watchers"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st.Watchers
}

// Breaking out of events.Watch ends its long poll at once: the goroutine
// of the client's shared poll ends and the member's watcher goes, with the
// garbage collector off (before the fix only a collection of the
// abandoned watcher ended them).
func TestEventsWatchBreakEndsPoll(t *testing.T) {
	backend.FromEnv(t).SkipOnAdapter(t, "it checks the native client's shared polls")
	c := newCluster(t, testbed.Options{Size: 1})
	url := c.Members()[0].ClientURL()
	ev := events.New(newKAPI(t, []string{url}), "/events")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := sharedPolls()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	seq := ev.Watch(ctx, "deploy") // fixes the starting point
	_, err := ev.Fire(ctx, "deploy", []byte("x"))
	require.NoError(t, err)
	n := 0
	for e, err := range seq {
		require.NoError(t, err)
		require.Equal(t, "x", string(e.Payload))
		n++
		break
	}
	require.Equal(t, 1, n)

	// Goroutine exit and the member's bookkeeping cannot be awaited
	// otherwise: poll, bounded.
	end := time.Now().Add(10 * time.Second)
	for sharedPolls() > base || storeWatchers(t, url) > 0 {
		if time.Now().After(end) {
			t.Fatalf("10 s after the loop ended: %d shared poll goroutines (%d before), %d watchers on the member",
				sharedPolls(), base, storeWatchers(t, url))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
