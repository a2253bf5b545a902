package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// errorBodyLimit bounds how much of a 5xx body is read to describe it.
const errorBodyLimit = 64 << 10

// Response bodies of the keys API (a Response and its Node tree, up to
// megabytes for a recursive listing) are decoded by the streaming decoder
// of decoder.go, which reads the body as it parses, so that decoding
// overlaps the transfer, and validates and decodes in one pass. It handles
// the JSON etcd writes and leaves anything else to encoding/json, whose
// answer, or error, is then returned: the result is always encoding/json's,
// which FuzzDecodeResponse checks on arbitrary input. It replaced
// github.com/ugorji/go/codec, about three times slower on a listing: see
// docs/decoding.md for the measurements.
//
// Other values (members, versions, auth) are small and decoded by
// encoding/json.

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
	_, keys := v.(*Response)
	return &invalidJSONError{err: err, keys: keys}
}

// invalidJSONError is a decoding error that matches ErrInvalidJSON. Its
// text is the original client's: ErrInvalidJSON's for an answer of the
// keys API, the JSON error's for the others.
type invalidJSONError struct {
	err  error
	keys bool
}

func (e *invalidJSONError) Error() string {
	if e.keys {
		return ErrInvalidJSON.Error()
	}
	return e.err.Error()
}

func (e *invalidJSONError) Unwrap() error { return e.err }

func (e *invalidJSONError) Is(target error) bool { return target == ErrInvalidJSON }

// readAllCapped reads an error body, at most errorBodyLimit bytes of it.
func readAllCapped(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, errorBodyLimit))
}

// errorAnswer reads and closes the body of an error answer (at most
// errorBodyLimit bytes of it) and returns what the server said (see
// decodeErrorBody) with the body.
func errorAnswer(status int, body io.ReadCloser) ([]byte, error) {
	b, _ := readAllCapped(body)
	body.Close()
	return b, decodeErrorBody(status, b)
}

// decodeErrorBody turns an error answer into an Error when the body is an
// etcd key error, and into an *HTTPError otherwise.
func decodeErrorBody(status int, b []byte) error {
	var v struct {
		Code    *int   `json:"errorCode"`
		Message string `json:"message"`
		Cause   string `json:"cause"`
		Index   uint64 `json:"index"`
	}
	if err := json.Unmarshal(b, &v); err == nil {
		if v.Code != nil {
			return Error{Code: *v.Code, Message: v.Message, Cause: v.Cause, Index: v.Index}
		}
		if v.Message != "" {
			return &HTTPError{StatusCode: status, Message: v.Message}
		}
	}
	msg := string(bytes.TrimSpace(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &HTTPError{StatusCode: status, Message: msg}
}

// getJSON GETs a path of the cluster API that answers 200 with JSON.
func (c *httpClusterClient) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: path, kind: KindCluster, replayable: true})
	if err != nil {
		return err
	}
	return decodeResponse(resp, http.StatusOK, v)
}

// decodeResponse decodes a JSON answer with the expected status, or turns
// any other into an error. It closes the body.
func decodeResponse(resp *response, want int, v any) error {
	if resp.StatusCode != want {
		_, err := errorAnswer(resp.StatusCode, resp.Body)
		return err
	}
	if err := decodeJSON(resp.Body, v); err != nil {
		resp.Body.Close()
		return err
	}
	return finishBody(resp.Body)
}

// decodeKeysResponse turns an answer of the keys API into a Response or an
// error. It closes the body.
func decodeKeysResponse(resp *response) (*Response, error) {
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		r, err := decodedResponse(resp.Body)
		if r == nil && err == nil {
			r = new(Response)
			err = decodeJSON(resp.Body, r)
		}
		if err != nil {
			resp.Body.Close()
			return nil, err
		}
		_ = finishBody(resp.Body)
		setMeta(r, resp)
		return r, nil
	default:
		b, err := errorAnswer(resp.StatusCode, resp.Body)
		var he *HTTPError
		if errors.As(err, &he) {
			// Not an etcd error: as the original client, JSON is read
			// as an Error all the same, anything else is invalid JSON
			// (which unwraps to the *HTTPError).
			var e Error
			if json.Unmarshal(b, &e) == nil {
				return nil, e
			}
			return nil, &invalidJSONError{err: he, keys: true}
		}
		return nil, err
	}
}

// setMeta copies what the headers of an answer say into r.
func setMeta(r *Response, resp *response) {
	r.Index = headerUint(resp.Header, "X-Etcd-Index")
	r.ClusterID = headerValue(resp.Header, "X-Etcd-Cluster-Id")
	r.RaftIndex = headerUint(resp.Header, "X-Raft-Index")
	r.RaftTerm = headerUint(resp.Header, "X-Raft-Term")
	r.Endpoint = resp.endpoint
}

// headerValue is h.Get(name) for a name in canonical form, which is how
// net/http keys the headers it reads: without canonicalizing name again.
func headerValue(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// headerUint parses a header holding an unsigned number; 0 if absent or
// bad. Its name is in canonical form (see headerValue).
func headerUint(h http.Header, name string) uint64 {
	v := headerValue(h, name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
