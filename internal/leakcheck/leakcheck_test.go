package leakcheck

import (
	"testing"
	"time"
)

func TestCheckFindsLeak(t *testing.T) {
	before := Snapshot()
	stop := make(chan struct{})
	go func() { <-stop }()
	if err := Check(before, 50*time.Millisecond); err == nil {
		t.Fatal("a running goroutine was not reported")
	}
	close(stop)
	if err := Check(before, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
