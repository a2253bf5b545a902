package recipes_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/integration/testbed"
)

// TestMutexStress (ETCDV2_FAULTS=1 only): 16 contenders in 4 processes make
// 2400 acquisitions of one mutex on a 3-member cluster while members are in
// turn killed (-9) and restarted, stopped (SIGSTOP) and continued, and cut
// off from their peers and rejoined. Mutual exclusion in index space and
// token order are checked against a recorder that watched the lock
// directory from the start; at the end no node is left.
func TestMutexStress(t *testing.T) {
	if os.Getenv("ETCDV2_FAULTS") != "1" {
		t.Skip("long fault suite: set ETCDV2_FAULTS=1")
	}
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	kapi, _ := newClient(t, c.ClientURLs())
	from := currentIndex(t, kapi)
	rec := startRecorder(t, kapi, "/stress", from)
	const procs, workers, count = 4, 4, 150
	faults := 0
	holds, ops := runContenders(t, c, "/stress/lock", "/stress-res", procs, workers, count, 5, 150, memberFaults(t, c, &faults))
	require.Positive(t, faults)
	require.GreaterOrEqual(t, len(holds), procs*workers*count*9/10, "most acquisitions reported a hold")
	evs := rec.waitIndex(t, marker(t, kapi, "/stress"), time.Minute)
	checkExclusion(t, evs, "/stress/lock", holds)
	t.Logf("%d acquisitions under %d faults checked against %d recorded events", len(holds), faults, len(evs))
	checkLockLinearizable(t, ops)
	waitChildren(t, kapi, "/stress/lock", 0)
}

// memberFaults returns the fault schedule of the stress tests: in turn,
// kill -9 and restart the leader, SIGSTOP a follower for 2s, isolate the
// leader for 3s, kill -9 a follower and restart it after 1s.
func memberFaults(t *testing.T, c *testbed.Cluster, faults *int) func(i int) {
	return func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		l, err := c.Leader(ctx)
		require.NoError(t, err)
		var follower *testbed.Member
		for _, m := range c.Members() {
			if m != l {
				follower = m
			}
		}
		switch i % 4 {
		case 1:
			t.Logf("fault %d: kill -9 the leader %s, restart", i, l.Name())
			l.Kill(t)
			l.Restart(t)
		case 2:
			t.Logf("fault %d: SIGSTOP %s for 2s", i, follower.Name())
			follower.Stop(t)
			time.Sleep(2 * time.Second) // the fault's duration
			follower.Continue(t)
		case 3:
			t.Logf("fault %d: isolate the leader %s for 3s", i, l.Name())
			l.Isolate(t)
			time.Sleep(3 * time.Second) // the fault's duration
			l.Rejoin(t)
		case 0:
			t.Logf("fault %d: kill -9 %s, restart after 1s", i, follower.Name())
			follower.Kill(t)
			time.Sleep(time.Second) // the fault's duration
			follower.Restart(t)
		}
		require.NoError(t, c.WaitHealthy(ctx))
		*faults++
	}
}

// TestSemaphoreStress (ETCDV2_FAULTS=1 only): 16 contenders in 4 processes
// make 960 acquisitions of a limit-2 semaphore under the same member
// faults; every write made while holding falls where the writer's node is
// among the first two live nodes of the recorded history.
func TestSemaphoreStress(t *testing.T) {
	if os.Getenv("ETCDV2_FAULTS") != "1" {
		t.Skip("long fault suite: set ETCDV2_FAULTS=1")
	}
	t.Parallel()
	c := newCluster(t, testbed.Options{Size: 3, ProxyPeers: true})
	kapi, _ := newClient(t, c.ClientURLs())
	from := currentIndex(t, kapi)
	rec := startRecorder(t, kapi, "/semstress", from)
	const procs, workers, count = 4, 4, 60
	faults := 0
	holds, _ := runContendersOf(t, c, "semaphore", "/semstress/batch", "/semstress-res", procs, workers, count, 5, 120, memberFaults(t, c, &faults))
	require.Positive(t, faults)
	require.GreaterOrEqual(t, len(holds), procs*workers*count*9/10)
	evs := rec.waitIndex(t, marker(t, kapi, "/semstress"), time.Minute)
	for _, h := range holds {
		live := liveAt(evs, "/semstress/batch", h.index)
		pos := -1
		for i, n := range live {
			if n.created == h.token {
				pos = i
			}
		}
		require.True(t, pos >= 0 && pos < 2, "write at %d by token %d at position %d", h.index, h.token, pos)
	}
	t.Logf("%d acquisitions under %d faults checked against %d recorded events", len(holds), faults, len(evs))
	waitChildren(t, kapi, "/semstress/batch", 0)
}
