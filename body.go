package client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
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

// readBody reads the body of an answer that is not a watch, within the
// attempt: a member that stalls after its headers (idle for idle, when
// positive) or breaks the connection fails the attempt, which can then go
// to another member, instead of failing the caller's decoding after the
// request loop is done. The size cap applies. The answer of a keys API
// call (keys set) with status 200 or 201 is decoded as it arrives, into a
// Response kept in the body (see decodedResponse); any other is read into
// pooled chunks, for the caller to read.
func (c *httpClusterClient) readBody(st *attemptState, keys bool, status int, idle time.Duration) error {
	if idle > 0 {
		st.armIdle(idle)
	}
	var err error
	if keys && (status == http.StatusOK || status == http.StatusCreated) {
		err = c.decodeBody(st)
	} else {
		err = c.bufferBody(st, idle)
	}
	if idle > 0 {
		st.stopIdle()
	}
	return err
}

// bufferBody reads the whole body into pooled chunks.
func (c *httpClusterClient) bufferBody(st *attemptState, idle time.Duration) error {
	b := &st.body
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
				st.bodyData()
			}
		}
		if n == 0 {
			c.chunks.Put(ch)
		} else {
			b.chunks = append(b.chunks, ch[:n])
		}
	}
	b.buffered = true
	if err == io.EOF {
		return nil
	}
	return err
}

// idleReader reads a body within the size cap for the decoder, restarting
// the body's idle timeout whenever data comes, and remembers the first
// error other than io.EOF: that error fails the attempt, whatever the
// decoder made of it.
type idleReader struct {
	st  *attemptState
	err error
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.st.body.readCapped(p)
	if n > 0 && r.st.idle > 0 {
		r.st.bodyData()
	}
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// decodeBody decodes a keys API answer from the connection as it arrives
// (the decoder keeps only a window of it, see streamDecoder), then reads
// what is left of the body, as bufferBody would have: an error reading any
// of it fails the attempt. The decoder's own answer, a Response or an
// error, is kept in the body for decodedResponse.
func (c *httpClusterClient) decodeBody(st *attemptState) error {
	b := &st.body
	r := &b.reader
	*r = idleReader{st: st}
	resp, derr := decodeNewResponse(r)
	if r.err == nil {
		// The rest: a final newline, normally. A decoder that gave
		// up early (bad content) leaves more.
		buf := b.tail[:]
		var ch *[bodyChunk]byte
		var err error
		for err == nil {
			var n int
			if n, err = r.Read(buf); n == len(buf) && ch == nil {
				ch = c.getChunk()
				buf = ch[:]
			}
		}
		if ch != nil {
			c.chunks.Put(ch)
		}
	}
	b.buffered = true
	b.chunks = b.first[:0]
	if r.err != nil {
		return r.err
	}
	b.decoded = true
	if derr != nil {
		b.decodeErr = derr
	} else {
		b.resp = resp
	}
	return nil
}

// decodedResponse returns the answer decoded within the attempt (see
// decodeBody), a Response or an error, if body is the body of one; nil and
// nil if not.
func decodedResponse(body io.ReadCloser) (*Response, error) {
	if b, ok := body.(*cappedBody); ok && b.decoded {
		return b.resp, b.decodeErr
	}
	return nil, nil
}

// stalledError is the cause of an attempt given up for a stalled body.
func stalledError(after time.Duration) error {
	return fmt.Errorf("%w: no data for %v after the headers", ErrResponseStalled, after)
}

// cappedBody limits a response body to Config.MaxResponseBytes and
// releases the attempt's resources when closed.
type cappedBody struct {
	rc        io.ReadCloser
	remaining int64 // negative: no cap
	limit     int64
	st        *attemptState
	c         *httpClusterClient
	// onClose, when set, runs after the attempt is released.
	onClose func()
	closed  bool
	// buffered is set once the whole body is in chunks (every answer but
	// a watch's); ci and off are the read position in them.
	buffered bool
	chunks   [][]byte
	first    [1][]byte
	ci, off  int
	// reader is the decoder's reader, when decodeBody reads the body
	// (here to save an allocation).
	reader idleReader
	// decoded is set when the body was decoded within the attempt
	// (decodeBody) into resp, or into decodeErr.
	decoded   bool
	resp      *Response
	decodeErr error
	// tail is where decodeBody reads what follows the answer: a final
	// newline, normally (it takes a chunk when more is left).
	tail [8]byte
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.buffered {
		for b.ci < len(b.chunks) {
			if ch := b.chunks[b.ci]; b.off < len(ch) {
				n := copy(p, ch[b.off:])
				b.off += n
				return n, nil
			}
			b.ci, b.off = b.ci+1, 0
		}
		return 0, io.EOF
	}
	return b.readCapped(p)
}

// readCapped reads from the connection within the size cap.
func (b *cappedBody) readCapped(p []byte) (int, error) {
	if b.remaining < 0 {
		return b.rc.Read(p)
	}
	if b.remaining == 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	err := b.rc.Close()
	for i, ch := range b.chunks {
		b.c.chunks.Put((*[bodyChunk]byte)(ch[:bodyChunk]))
		b.chunks[i] = nil
	}
	b.chunks = nil
	clear(b.first[:])
	b.resp, b.decodeErr = nil, nil
	b.st.release(b.c)
	if b.onClose != nil {
		b.onClose()
	}
	return err
}

// drainLimit is how much of a body finishBody reads past what the caller
// decoded (a JSON decoder leaves the final newline unread).
const drainLimit = 4 << 10

// finishBody reads what is left of a body whose content has been decoded,
// up to drainLimit, and closes it, so that the connection is reused. Use
// it only on a body whose end is near: never on an unfinished watch.
func finishBody(body io.ReadCloser) error {
	if b, ok := body.(*cappedBody); ok {
		if !b.buffered && !b.closed {
			// Still on the connection (a watch's answer): read in
			// a chunk. A buffered body was read whole already.
			ch := b.c.getChunk()
			for n := 0; n < drainLimit; {
				k, err := b.Read(ch[:drainLimit-n])
				n += k
				if err != nil {
					break
				}
			}
			b.c.chunks.Put(ch)
		}
		return b.Close()
	}
	_, _ = io.CopyN(io.Discard, body, drainLimit)
	return body.Close()
}
