package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	"github.com/ugorji/go/codec"
)

// Response bodies of the keys API are decoded by github.com/ugorji/go/codec
// (reflection, no generated code), which is about twice as fast as
// encoding/json on big listings, streaming from the body so that decoding
// overlaps the transfer. Its JSON decoder is more lenient than
// encoding/json (it turns numbers into strings, "1e2" into an integer,
// keeps raw control characters and invalid UTF-8, matches field names
// case-sensitively, turns a null into a zero value ...), and the answer must
// be exactly what encoding/json would give. So the bytes it reads are kept,
// and once it is done canonicalResponse checks them: a body that is plain
// etcd output (valid JSON; each field of Response and Node at most once,
// spelled exactly, of its exact JSON type; strings in valid UTF-8 without
// surrogate escapes; integers in range without fraction or exponent; null
// only as a whole field value) is one on which both decoders agree. Any other body, or one that
// ugorji rejects, is decoded again by encoding/json from the kept bytes and
// the rest of the stream, and that result (or error) is returned. The fuzz
// test FuzzDecodeResponse checks the agreement on arbitrary input.
//
// Other values (members, versions) are small and decoded by encoding/json.

// ugorjiHandle is the shared, read-only configuration of the decoders.
var ugorjiHandle = func() *codec.JsonHandle {
	h := &codec.JsonHandle{}
	// An unknown or differently-cased field makes ugorji fail, and so
	// sends the body to encoding/json.
	h.ErrorIfNoField = true
	h.ReaderBufferSize = 16 << 10
	// time.Time is decoded as encoding/json does: with UnmarshalText,
	// which is what Time.UnmarshalJSON applies to a string without escapes.
	if err := h.SetInterfaceExt(reflect.TypeOf(time.Time{}), 1, timeExt{}); err != nil {
		panic(err)
	}
	return h
}()

// timeExt decodes a time.Time from a JSON string like encoding/json.
type timeExt struct{}

func (timeExt) ConvertExt(v any) any { return v.(*time.Time).Format(time.RFC3339Nano) }

func (timeExt) UpdateExt(dst, src any) {
	s, ok := src.(string)
	if !ok {
		panic(errors.New("time must be a JSON string"))
	}
	if err := dst.(*time.Time).UnmarshalText([]byte(s)); err != nil {
		panic(err)
	}
}

// responseDecoder is a pooled ugorji decoder with the buffer that keeps
// what it read.
type responseDecoder struct {
	dec *codec.Decoder
	rec recorder
}

// recorder reads from r and keeps a copy of what it read.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (rc *recorder) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	rc.buf = append(rc.buf, p[:n]...)
	return n, err
}

var decoderPool = sync.Pool{New: func() any {
	d := &responseDecoder{}
	d.dec = codec.NewDecoder(&d.rec, ugorjiHandle)
	return d
}}

// decodeJSON decodes one JSON value from r into v, exactly as a
// json.Decoder would, and reads no further than the decoder it uses. It is
// the one place response bodies are decoded. An empty body (nothing but
// white space) gives ErrEmptyBody; an error reading r is returned as it
// is; bad content gives an error matching ErrInvalidJSON (wrapping
// io.ErrUnexpectedEOF when the body ends within the value).
func decodeJSON(r io.Reader, v any) error {
	if resp, ok := v.(*Response); ok {
		return decodeResponseStream(r, resp)
	}
	return decodeStd(r, v)
}

// decodeJSONUgorji is the former path, kept for the benchmarks.
func decodeJSONUgorji(r io.Reader, resp *Response) error {
	d := decoderPool.Get().(*responseDecoder)
	defer func() {
		d.rec.r = nil
		if cap(d.rec.buf) <= maxPooledBuffer {
			d.rec.buf = d.rec.buf[:0]
			decoderPool.Put(d)
		}
	}()
	d.rec.r = r
	d.rec.buf = d.rec.buf[:0]
	d.dec.Reset(&d.rec)
	err := decodeUgorji(d.dec, resp)
	if err == nil && canonicalResponse(d.rec.buf) {
		return nil
	}
	*resp = Response{}
	return decodeStd(io.MultiReader(bytes.NewReader(d.rec.buf), r), resp)
}

// decodeUgorji runs the ugorji decoder, turning a panic of an extension
// into an error.
func decodeUgorji(dec *codec.Decoder, v *Response) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("client: decoding: %v", p)
		}
	}()
	return dec.Decode(v)
}

// errReader remembers the first error other than io.EOF of r.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// decodeStd decodes with encoding/json and classifies the error.
func decodeStd(r io.Reader, v any) error {
	er := &errReader{r: r}
	err := json.NewDecoder(er).Decode(v)
	switch {
	case err == nil:
		return nil
	case er.err != nil && errors.Is(err, er.err):
		return err
	case err == io.EOF:
		return ErrEmptyBody
	}
	return fmt.Errorf("%w: %w", ErrInvalidJSON, err)
}

// readAllCapped reads an error body, at most errorBodyLimit bytes of it.
func readAllCapped(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, errorBodyLimit))
}
