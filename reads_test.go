package client

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/clock"
	"github.com/etcdv2/client/internal/v2fake"
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

// TestSlowReadOfAnsweringMemberIsNotChecked: while a member answers other
// requests of the client, a read it holds is waited for without asking the
// member for /version (the answers show it running); once the member
// answers nothing else, the read's liveness check asks again.
func TestSlowReadOfAnsweringMemberIsNotChecked(t *testing.T) {
	gate := make(chan struct{})
	asked := make(chan struct{}, 1)
	s := v2fake.Start(t, v2fake.Options{ClusterID: "cafe", Index: 10})
	s.Set("/k", "v")
	s.Set("/slow", "v")
	s.On("*", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		switch r.URL.Path {
		case "/v2/keys/slow":
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		case "/version":
			select {
			case asked <- struct{}{}:
			default:
			}
		}
		next.ServeHTTP(w, r)
	})
	// The real clock: answers are told apart by the time they came.
	c, _ := clusterClientWith(t, []*member{{srv: s, url: s.URL}}, Config{}, clock.Real{})
	c.health.SetTimeout(100 * time.Millisecond) // checks after 50 ms, then every 100 ms
	kapi := NewKeysAPI(c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	slow := make(chan error, 1)
	go func() {
		_, err := kapi.Get(ctx, "/slow", nil)
		slow <- err
	}()
	// Other reads are answered for several check periods.
	start := time.Now()
	for i := 0; i < 100000 && time.Since(start) < 600*time.Millisecond; i++ {
		if _, err := kapi.Get(ctx, "/k", nil); err != nil {
			t.Fatalf("fast read: %v", err)
		}
	}
	if n := s.Count("/version"); n != 0 {
		t.Errorf("the member was asked for /version %d times while it answered other reads", n)
	}
	select {
	case err := <-slow:
		t.Fatalf("the held read ended while held: %v", err)
	default:
	}
	// Nothing else is answered now: the next check asks.
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatal("no liveness check once the member answered nothing else")
	}
	close(gate)
	if err := <-slow; err != nil {
		t.Fatalf("held read: %v", err)
	}
	if st := stateOf(c, s.URL); st.Failures != 0 {
		t.Errorf("member: %+v, want no failure", st)
	}
}
