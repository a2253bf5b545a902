package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// idleAttempt is a plain read whose body has started and then sends
// nothing: the watchdog must give it up after idle. Its cancellation is
// sent on the channel returned.
func idleAttempt(idle time.Duration) (*attemptState, <-chan error) {
	ch := make(chan error, 1)
	st := &attemptState{checks: true, idle: idle}
	st.cancel = func(err error) {
		if err != nil {
			select {
			case ch <- err:
			default:
			}
		}
	}
	st.phase.Store(phaseAnswered)
	st.due.Store(dueStampData)
	st.idleArmed.Store(true)
	return st, ch
}

// TestWatchdogComesForEveryAttempt: an attempt added at any moment of the
// watchdog's cycle (disarmed, armed, looking, disarming) is looked at:
// every idle attempt is given up, not before its idle timeout, whether it
// is alone in the watchdog's care or among others. A lost arming would
// leave an attempt alone forever.
func TestWatchdogComesForEveryAttempt(t *testing.T) {
	w := &watchdog{tick: time.Millisecond}
	t.Cleanup(w.stop)
	const idle = 2 * time.Millisecond
	run := func(iterations int) {
		for i := 0; i < iterations; i++ {
			st, cancelled := idleAttempt(idle)
			added := time.Now()
			w.add(st)
			select {
			case err := <-cancelled:
				require.ErrorIs(t, err, ErrResponseStalled)
				require.GreaterOrEqual(t, time.Since(added), idle, "given up before its idle timeout")
			case <-time.After(5 * time.Second):
				t.Errorf("attempt %d was never given up", i)
				return
			}
			removeInflight(st)
			// Vary where the next add falls in the watchdog's cycle.
			if d := rand.IntN(4000); d > 0 {
				time.Sleep(time.Duration(d) * time.Microsecond)
			}
		}
	}
	t.Run("alone", func(t *testing.T) { run(300) })
	t.Run("among others", func(t *testing.T) {
		done := make(chan struct{})
		for g := 0; g < 4; g++ {
			go func() {
				defer func() { done <- struct{}{} }()
				run(100)
			}()
		}
		for g := 0; g < 4; g++ {
			<-done
		}
	})
	// Nothing in its care: it disarms, and then stops looking.
	deadline := time.Now().Add(5 * time.Second)
	for w.armed.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.False(t, w.armed.Load(), "the watchdog is still armed with nothing in its care")
	looks := w.looks.Load()
	time.Sleep(20 * w.tick)
	require.Equal(t, looks, w.looks.Load(), "the watchdog looked with nothing in its care")
}

// TestWatchdogArmsForAnAttemptAddedAsItDisarms: an attempt that joins the
// set after a look went through it, its add having found the watchdog
// still armed (and so not arming it), is looked at all the same: the look
// that disarms looks at the set again.
func TestWatchdogArmsForAnAttemptAddedAsItDisarms(t *testing.T) {
	late, cancelled := idleAttempt(time.Millisecond)
	var joined atomic.Bool
	w := &watchdog{tick: time.Millisecond}
	w.afterScan = func(found bool) {
		if !found && joined.CompareAndSwap(false, true) {
			w.set.add(late) // as an add that found armed set would
		}
	}
	t.Cleanup(w.stop)
	first, firstCancelled := idleAttempt(time.Millisecond)
	w.add(first)
	require.ErrorIs(t, <-firstCancelled, ErrResponseStalled)
	removeInflight(first)
	select {
	case err := <-cancelled:
		require.ErrorIs(t, err, ErrResponseStalled)
	case <-time.After(5 * time.Second):
		t.Fatal("the attempt that joined as the watchdog disarmed was never looked at")
	}
	require.True(t, joined.Load())
	removeInflight(late)
}

// TestWatchdogSleepsBesideReadBodies: an attempt whose body was read but
// is not yet closed is still in the watchdog's set, with nothing for it to
// do: it does not keep the watchdog looking.
func TestWatchdogSleepsBesideReadBodies(t *testing.T) {
	w := &watchdog{tick: time.Millisecond}
	t.Cleanup(w.stop)
	st := &attemptState{checks: true, cancel: func(error) {}}
	st.phase.Store(phaseAnswered) // headers came, body read: idleArmed unset
	w.add(st)
	defer removeInflight(st)
	waitFor(t, func() bool { return !w.armed.Load() }, "the watchdog disarmed")
	looks := w.looks.Load()
	time.Sleep(20 * w.tick)
	require.Equal(t, looks, w.looks.Load(), "the watchdog looked with only a read body in its care")
}

// TestWatchdogSleepsWithoutPlainReads: a client's watchdog wakes only
// while plain reads are in flight: not for a watch held by its member, nor
// once the reads are done.
func TestWatchdogSleepsWithoutPlainReads(t *testing.T) {
	m := newFakeMember(t, "c1")
	m.Set("/k", "v")
	c := newTestClient(t, Config{Endpoints: []string{m.URL}})
	kapi := NewKeysAPI(c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		_, err := kapi.Get(ctx, "/k", nil)
		require.NoError(t, err)
	}
	require.Positive(t, c.watchdog.looks.Load()+boolInt(c.watchdog.armed.Load()), "plain reads armed the watchdog")
	deadline := time.Now().Add(5 * time.Second)
	for c.watchdog.armed.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.False(t, c.watchdog.armed.Load(), "the watchdog is still armed after the reads")

	// A watch held by the member is not in the watchdog's care.
	wctx, wcancel := context.WithCancel(ctx)
	w := kapi.Watcher("/k", &WatcherOptions{AfterIndex: 1 << 40})
	held := make(chan error, 1)
	go func() {
		_, err := w.Next(wctx)
		held <- err
	}()
	waitFor(t, func() bool { return m.Count("/v2/keys/k") >= 11 }, "the watch's poll reached the member")
	looks := c.watchdog.looks.Load()
	time.Sleep(10 * watchdogTick)
	require.False(t, c.watchdog.armed.Load(), "a held watch armed the watchdog")
	require.Equal(t, looks, c.watchdog.looks.Load(), "the watchdog looked while only a watch was in flight")
	wcancel()
	require.True(t, errors.Is(<-held, context.Canceled))
}

// waitFor waits, for at most 10 s, until cond holds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
