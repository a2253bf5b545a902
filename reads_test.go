package client

import (
	"context"
	"testing"
	"time"
)

// TestSlowReadOfLiveMemberIsWaitedFor: a member that takes far longer than
// the adaptive timeout to answer a read, but answers /version at once, is
// busy (building a large listing), not hung: the read waits for it and it
// is not blamed. A member that answers nothing is still left after about
// one timeout.
func TestSlowReadOfLiveMemberIsWaitedFor(t *testing.T) {
	ms := startMembers(t, 2)
	c, _, _ := clusterClient(t, ms, Config{Selector: preferOrder(ms[0].url, ms[1].url)})
	c.health.SetTimeout(100 * time.Millisecond) // as after many fast answers
	ms[0].delay.Store(int64(time.Second))
	start := time.Now()
	ep, err := read(context.Background(), c)
	if err != nil || ep != ms[0].url {
		t.Fatalf("read: %v at %s, want success at the slow member", err, ep)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("read took %v, less than the member held it", d)
	}
	if n := ms[0].version(); n < 2 {
		t.Errorf("the slow member was checked %d times, want repeated checks", n)
	}
	if s := stateOf(c, ms[0].url); s.Failures != 0 || s.State != StateHealthy {
		t.Errorf("slow member: %+v, want no failure", s)
	}
	if ms[1].keys() != 0 {
		t.Errorf("the read was also sent to the other member")
	}

	ms[0].mode.Store(modeHung)
	start = time.Now()
	ep, err = read(context.Background(), c)
	if err != nil || ep != ms[1].url {
		t.Fatalf("read: %v at %s, want success at the other member", err, ep)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("read took %v; the hung member should cost about one 100 ms timeout", d)
	}
	if s := stateOf(c, ms[0].url); s.Failures != 1 {
		t.Errorf("hung member: %+v, want one failure", s)
	}
}
