package clock

import (
	"testing"
	"time"
)

func TestFakeFiresDueTimersOnly(t *testing.T) {
	f := NewFake()
	start := f.Now()
	a, b := f.NewTimer(time.Second), f.NewTimer(2*time.Second)
	stopped := f.NewTimer(time.Second)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	f.Advance(time.Second)
	if got := f.Now() - start; got != int64(time.Second) {
		t.Fatalf("Now moved by %d ns, want 1 s", got)
	}
	select {
	case <-a.C():
	default:
		t.Fatal("the 1 s timer did not fire at 1 s")
	}
	select {
	case <-b.C():
		t.Fatal("the 2 s timer fired at 1 s")
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if a.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	f.Advance(time.Second)
	select {
	case <-b.C():
	default:
		t.Fatal("the 2 s timer did not fire at 2 s")
	}
	if n := len(f.Added()); n != 3 {
		t.Errorf("%d timers announced, want 3", n)
	}
	select {
	case <-f.NewTimer(0).C():
	default:
		t.Error("a timer of 0 has not fired at once")
	}
}
