package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWrittenWriteGetsTheWholeDeadline: a write that cannot be resent has,
// once written, nowhere to fail over to, so a slow success within the
// caller's deadline is a success, not an unknown outcome, whether other
// endpoints remain or not.
func TestWrittenWriteGetsTheWholeDeadline(t *testing.T) {
	for _, n := range []int{1, 2} {
		ms := startMembers(t, n)
		for _, m := range ms {
			m.delay.Store(int64(700 * time.Millisecond))
		}
		c := newTestClient(t, Config{Endpoints: urlsOf(ms)})
		ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
		_, err := write(ctx, c, false)
		cancel()
		require.NoError(t, err, "%d endpoints: a 700 ms commit within a 1.2 s deadline", n)
		for _, m := range ms {
			require.Zero(t, stateOf(c, m.url).Failures)
		}
	}
}

// TestCloseDuringWriteIsUnknownOutcome: Close cuts off a write that was
// sent: its outcome is unknown, and the error says both.
func TestCloseDuringWriteIsUnknownOutcome(t *testing.T) {
	ms := startMembers(t, 1)
	ms[0].delay.Store(int64(10 * time.Second))
	c := newTestClient(t, Config{Endpoints: urlsOf(ms)})
	done := make(chan error, 1)
	go func() {
		_, err := write(context.Background(), c, false)
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for ms[0].keys() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // until the write has reached the member
	}
	require.NoError(t, c.Close())
	err := <-done
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, ErrClosed)

	// A read cut off by Close is just closed.
	ms2 := startMembers(t, 1)
	ms2[0].delay.Store(int64(10 * time.Second))
	c2 := newTestClient(t, Config{Endpoints: urlsOf(ms2)})
	go func() {
		_, err := c2.do(context.Background(), &request{method: http.MethodGet, path: "/v2/keys/k", kind: KindRead, replayable: true})
		done <- err
	}()
	for ms2[0].keys() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, c2.Close())
	err = <-done
	require.True(t, errors.Is(err, ErrClosed) && !errors.Is(err, ErrOutcomeUnknown), "read: %v", err)
}

// hooklessTransport is a Config.Transport not built on net/http's client,
// so that no httptrace hook runs: it delivers each request through a
// transport of its own, then, for a POST, loses the answer. A dial that
// fails is returned as it is.
type hooklessTransport struct {
	inner  http.RoundTripper
	writes atomic.Int32
}

func (t *hooklessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out, err := http.NewRequestWithContext(context.Background(), req.Method, req.URL.String(), req.Body)
	if err != nil {
		return nil, err
	}
	out.Header = req.Header.Clone()
	out.ContentLength = req.ContentLength
	resp, err := t.inner.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	if req.Method == http.MethodPost {
		t.writes.Add(1)
		resp.Body.Close()
		return nil, io.ErrUnexpectedEOF // the answer was lost
	}
	return resp, nil
}

func (t *hooklessTransport) CancelRequest(*http.Request) {}

// TestWriteNotResentThroughHooklessTransport: a write that cannot be
// resent is not resent when the transport runs no httptrace hooks (the
// client cannot tell it was written): it is delivered once and the caller
// gets ErrOutcomeUnknown. A dial that failed still fails over.
func TestWriteNotResentThroughHooklessTransport(t *testing.T) {
	a, b := newFake(t), newFake(t)
	inner := &http.Transport{}
	defer inner.CloseIdleConnections()
	tr := &hooklessTransport{inner: inner}
	c := newAPIClient(t, Config{Transport: tr}, a, b)
	_, err := NewKeysAPI(c).CreateInOrder(context.Background(), "/q", "v", nil)
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.EqualValues(t, 1, tr.writes.Load(), "deliveries of the POST")

	// The first endpoint refuses connections: the write goes to the second.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + ln.Addr().String()
	ln.Close()
	cl, err := New(Config{Endpoints: []string{dead, b.URL}, Transport: &hooklessTransport{inner: inner}, Selector: firstOf(dead, b.URL)})
	require.NoError(t, err)
	defer cl.Close()
	_, err = NewKeysAPI(cl).Create(context.Background(), "/k", "v")
	require.NoError(t, err)
}
