package client

// The stream decoder's buffer: the window it reads the body into (fill,
// ensure), what it keeps of the body for encoding/json when an answer is
// not in the form etcd writes (replay, fallbackReader), and the decoders
// kept between answers (getDecoder, putDecoder, release). The parser is in
// decoder.go.

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// maxFallbackBytes bounds the answers decoded by encoding/json when they
// are outside the form etcd writes (see decodeResponseStream): the stream
// decoder bounds allocation by refusing nodes without keys, encoding/json
// cannot, so it gets only bodies this small.
const maxFallbackBytes = 1 << 20

// errFallbackTooLarge refuses a large answer outside etcd's form.
var errFallbackTooLarge = fmt.Errorf("%w: an answer of more than %d bytes not in the form etcd writes", ErrInvalidJSON, maxFallbackBytes)

// fallbackReader fails with errFallbackTooLarge past maxFallbackBytes.
type fallbackReader struct {
	r io.Reader
	n int
}

func (f *fallbackReader) Read(p []byte) (int, error) {
	if f.n >= maxFallbackBytes {
		return 0, errFallbackTooLarge
	}
	if len(p) > maxFallbackBytes-f.n {
		p = p[:maxFallbackBytes-f.n]
	}
	n, err := f.r.Read(p)
	f.n += n
	return n, err
}

var streamDecoderPool = sync.Pool{New: func() any { return new(streamDecoder) }}

// decoderCache keeps a few decoders, with their windows, across garbage
// collections, which empty streamDecoderPool: a large answer allocates
// enough to run several collections while it is decoded, so that a pool
// alone would often hand the next one a new decoder, whose window then
// grows again (up to maxWindow, about 1 MiB, for every large answer).
var decoderCache [2]atomic.Pointer[streamDecoder]

// getDecoder returns an idle decoder.
func getDecoder() *streamDecoder {
	for i := range decoderCache {
		if d := decoderCache[i].Swap(nil); d != nil {
			return d
		}
	}
	return streamDecoderPool.Get().(*streamDecoder)
}

// putDecoder keeps d, released, for getDecoder.
func putDecoder(d *streamDecoder) {
	for i := range decoderCache {
		if decoderCache[i].CompareAndSwap(nil, d) {
			return
		}
	}
	streamDecoderPool.Put(d)
}

// release forgets the reader and the answer, and pools d unless its
// buffer has grown too big.
func (d *streamDecoder) release() {
	if d.reset() {
		putDecoder(d)
	}
}

// reset forgets the reader and the answer, keeping the window empty, and
// reports whether d may be pooled: not when its buffers have grown too big.
func (d *streamDecoder) reset() bool {
	d.r = nil
	d.rerr = nil
	d.i = 0
	d.base = 0
	d.depth = 0
	clear(d.stack) // pointers into the answer, left by a failed parse
	d.stack = d.stack[:0]
	d.slab = nil // its Nodes belong to the answer
	d.nodes = 0
	d.times = nil
	d.ntimes = 0
	d.strs.Reset() // its strings belong to the answer
	d.bad = nil
	d.buf = d.buf[:0]
	return cap(d.buf) <= maxPooledBuffer && cap(d.scratch) <= maxPooledBuffer
}

// stickyError is a reader that fails with err.
type stickyError struct{ err error }

func (s stickyError) Read([]byte) (int, error) { return 0, s.err }

// replay returns a reader of the whole body as read by d: the bytes read
// so far, then the rest of r, or the error that ended the reading (read
// again, r might not give it again).
func (d *streamDecoder) replay() io.Reader {
	var rest io.Reader = d.r
	if d.rerr != nil {
		rest = stickyError{d.rerr}
	}
	return io.MultiReader(bytes.NewReader(d.buf), rest)
}

// fill reads more of the body into buf, making room as needed, and
// returns how far the bytes kept moved toward the start of buf (i and hold
// are moved with them; a caller holding other indexes into buf moves them
// too). It reports false when nothing more can be read (the end of the
// body or an error, kept in rerr). Like a json.Decoder it keeps asking
// while a read returns nothing and no error.
//
// Room is made by dropping the bytes before i (or hold) once they are no
// longer needed for a fallback, that is once more than maxFallbackBytes
// of the body lie before them; the window grows only while it must keep
// everything, or when one token fills it. Every caller keeps i (or hold)
// at the start of the token it scans, so that what is dropped has been
// parsed: a valid start of a JSON value that does not end within it. That
// is what makes the answer of a fallback known without the dropped bytes.
func (d *streamDecoder) fill() (shift int, ok bool) {
	if d.rerr != nil {
		return 0, false
	}
	for {
		if cap(d.buf) == 0 {
			// A new decoder: most answers are small, and a window of
			// minRead for each of the many decoders of concurrent
			// callers would be garbage at every collection (they are
			// pooled). It grows at a later fill if the body is longer;
			// an empty window (a pooled decoder's) is read into as it
			// is, so that small answers never grow it.
			d.buf = make([]byte, 0, firstWindow)
		} else if len(d.buf) > 0 && cap(d.buf)-len(d.buf) < minRead {
			keep := d.i
			if d.hold >= 0 && d.hold < keep {
				keep = d.hold
			}
			if d.base+keep > maxFallbackBytes && !d.keepAll && cap(d.buf)-(len(d.buf)-keep) >= minRead {
				n := copy(d.buf, d.buf[keep:])
				d.buf = d.buf[:n]
				d.base += keep
				d.i -= keep
				if d.hold >= 0 {
					d.hold -= keep
				}
				shift += keep
			} else {
				// While everything is kept, the window grows to
				// maxWindow, which holds maxFallbackBytes and room
				// to read; beyond, only for a token that fills it.
				size := 2*cap(d.buf) + minRead
				if size > maxWindow && len(d.buf)+minRead <= maxWindow {
					size = maxWindow
				}
				nb := make([]byte, len(d.buf), size)
				copy(nb, d.buf)
				d.buf = nb
			}
		}
		n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
		d.buf = d.buf[:len(d.buf)+n]
		if err != nil {
			d.rerr = err
		}
		if n > 0 {
			return shift, true
		}
		if err != nil {
			return shift, false
		}
	}
}

// ensure makes n bytes available at i, reporting false if the body ends
// before.
func (d *streamDecoder) ensure(n int) bool {
	for len(d.buf)-d.i < n {
		if _, ok := d.fill(); !ok {
			return false
		}
	}
	return true
}
