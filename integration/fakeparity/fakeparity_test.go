package fakeparity

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/internal/v2fake"
	"github.com/etcdv2/client/internal/v2fake/parity"
)

func TestMain(m *testing.M) { testbed.Main(m) }

// TestFakeMatchesEtcd runs every scenario against a one-member etcd 3.5
// cluster and against the fake, one after the other on each, and compares
// the normalised records step by step.
func TestFakeMatchesEtcd(t *testing.T) {
	cl := testbed.NewCluster(t, testbed.Options{Size: 1, Plain: true, ExtraArgs: []string{"--unsafe-no-fsync"}})
	fake := v2fake.Start(t, v2fake.Options{})
	real := newClient(t, cl.ClientURLs()[0])
	faked := newClient(t, fake.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	v, err := real.GetVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.Server, "3.5.") {
		t.Skipf("the fake answers as etcd 3.5; ETCD_BIN runs etcd %s", v.Server)
	}
	for _, sc := range parity.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			if sc.Slow && testing.Short() {
				t.Skip("slow")
			}
			want, err := parity.Run(ctx, parity.Target{Client: real, URL: cl.ClientURLs()[0]}, sc)
			if err != nil {
				t.Fatalf("on etcd: %v", err)
			}
			got, err := parity.Run(ctx, parity.Target{Client: faked, URL: fake.URL}, sc)
			if err != nil {
				t.Fatalf("on the fake: %v", err)
			}
			if d := diff(want, got); d != "" {
				t.Errorf("the fake differs from etcd 3.5:\n%s", d)
			}
		})
	}
}

// TestFakeWithoutLeaderMatchesEtcd: a member of a three-member cluster
// whose two peers are killed, and the fake after SetLeader(""), answer
// alike.
func TestFakeWithoutLeaderMatchesEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: a write waits for etcd's request timeout")
	}
	const electionMS = 500
	cl := testbed.NewCluster(t, testbed.Options{Size: 3, Plain: true, HeartbeatMS: 50, ElectionMS: electionMS, ExtraArgs: []string{"--unsafe-no-fsync"}})
	ms := cl.Members()
	ms[1].Kill(t)
	ms[2].Kill(t)
	survivor := ms[0].URL()
	real := newClient(t, survivor)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The survivor notices after an election timeout.
	deadline := time.Now().Add(20 * electionMS * time.Millisecond)
	for {
		_, err := client.NewMembersAPI(real).Leader(ctx)
		if client.IsElectionInProgress(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the survivor still has a leader: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // nothing announces the loss of the leader
	}
	want, err := parity.Run(ctx, parity.Target{Client: real, URL: survivor}, parity.NoLeader)
	if err != nil {
		t.Fatalf("on etcd: %v", err)
	}
	fake := v2fake.Start(t, v2fake.Options{})
	fake.SetLeader("")
	got, err := parity.Run(ctx, parity.Target{Client: newClient(t, fake.URL), URL: fake.URL}, parity.NoLeader)
	if err != nil {
		t.Fatalf("on the fake: %v", err)
	}
	if d := diff(want, got); d != "" {
		t.Errorf("the fake differs from etcd 3.5:\n%s", d)
	}
}

func newClient(t *testing.T, url string) client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoints: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// diff lists the steps whose records differ.
func diff(want, got []parity.Step) string {
	var b strings.Builder
	for i := 0; i < len(want) || i < len(got); i++ {
		var w, g parity.Step
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			fmt.Fprintf(&b, "step %d %q\n  etcd: %s\n  fake: %s\n", i, w.Name, w.Got, g.Got)
		}
	}
	return b.String()
}
