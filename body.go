package client

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrResponseStalled is matched by the error of an attempt whose server sent
// the response headers and then no data of the body for the body's idle
// timeout (see Config.HeaderTimeoutPerRequest). The attempt then fails over
// like any other failed attempt.
var ErrResponseStalled = errors.New("client: response body stalled")

// bodyChunk is the size of the pooled pieces a body is read into.
const bodyChunk = 16 << 10

// bodyIdleTimeout is how long an attempt waits for more of a body (not a
// watch's) before it is given up: the per-attempt timeout, but at least
// DefaultHeaderTimeoutPerRequest; none when per-attempt timeouts are off.
func (c *httpClusterClient) bodyIdleTimeout() time.Duration {
	if c.headerTimeout < 0 {
		return 0
	}
	return max(c.headerTimeout, DefaultHeaderTimeoutPerRequest)
}

func (c *httpClusterClient) getChunk() *[bodyChunk]byte {
	if p, _ := c.chunks.Get().(*[bodyChunk]byte); p != nil {
		return p
	}
	return new([bodyChunk]byte)
}

// bufferBody reads the whole body of an answer that is not a watch into
// pooled chunks, within the attempt: a member that stalls after its
// headers (idle for idle, when positive) or breaks the connection fails the
// attempt, which can then go to another member, instead of failing the
// caller's decoding after the request loop is done. The size cap applies.
func (c *httpClusterClient) bufferBody(st *attemptState, idle time.Duration) error {
	b := &st.body
	if idle > 0 {
		st.idle = idle
		if st.timer == nil {
			st.timer = time.AfterFunc(idle, st.expire)
		} else {
			st.timer.Reset(idle)
		}
	}
	b.chunks = b.first[:0]
	var err error
	for err == nil {
		ch := c.getChunk()
		n := 0
		for n < len(ch) && err == nil {
			var k int
			k, err = b.readCapped(ch[n:])
			n += k
			if k > 0 && idle > 0 {
				st.timer.Reset(idle)
			}
		}
		if n == 0 {
			c.chunks.Put(ch)
		} else {
			b.chunks = append(b.chunks, ch[:n])
		}
	}
	if st.timer != nil {
		st.timer.Stop()
	}
	b.buffered = true
	if err == io.EOF {
		return nil
	}
	return err
}

// stalledError is the cause of an attempt given up for a stalled body.
func stalledError(after time.Duration) error {
	return fmt.Errorf("%w: no data for %v after the headers", ErrResponseStalled, after)
}
