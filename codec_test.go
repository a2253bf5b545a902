package client

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"
)

// etcdBodies are response bodies as an etcd 3.5 server sends them.
var etcdBodies = []string{
	`{"action":"get","node":{"key":"/a","value":"x","modifiedIndex":5,"createdIndex":4}}`,
	`{"action":"set","node":{"key":"/w","value":"1","modifiedIndex":19,"createdIndex":19}}`,
	`{"action":"set","node":{"key":"/a","value":"2","modifiedIndex":6,"createdIndex":6},"prevNode":{"key":"/a","value":"1","modifiedIndex":5,"createdIndex":5}}`,
	`{"action":"get","node":{"dir":true,"nodes":[{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":4},{"key":"/k","value":"","modifiedIndex":5,"createdIndex":5}]}}`,
	`{"action":"get","node":{"key":"/d","dir":true,"modifiedIndex":4,"createdIndex":4}}`,
	`{"action":"set","node":{"key":"/t","value":"v","expiration":"2026-11-21T11:27:25.414162477Z","ttl":30,"modifiedIndex":7,"createdIndex":7}}`,
	`{"action":"update","node":{"key":"/t","value":"v","expiration":"2026-11-21T11:27:55.5Z","ttl":60,"modifiedIndex":8,"createdIndex":7},"prevNode":{"key":"/t","value":"v","expiration":"2026-11-21T11:27:25.414162477Z","ttl":30,"modifiedIndex":7,"createdIndex":7}}`,
	`{"action":"compareAndSwap","node":{"key":"/c","value":"\u003cb\u003e \"q\" \\ \n é 日本","modifiedIndex":9,"createdIndex":3}}`,
	`{"action":"delete","node":{"key":"/a","modifiedIndex":10,"createdIndex":6},"prevNode":{"key":"/a","value":"2","modifiedIndex":6,"createdIndex":6}}`,
	`{"action":"expire","node":{"key":"/t","modifiedIndex":11,"createdIndex":7},"prevNode":{"key":"/t","value":"v","expiration":"2026-11-21T11:27:25.414162477Z","modifiedIndex":7,"createdIndex":7}}`,
	`{"action":"create","node":{"key":"/q/00000000000000000012","value":"job","modifiedIndex":12,"createdIndex":12}}`,
	`{"action":"set"}`,
	"{\"action\":\"get\",\"node\":{\"key\":\"/a\",\"value\":\"x\",\"modifiedIndex\":5,\"createdIndex\":4}}\n",
	`{"action":"get","node":{"key":"/d","dir":true,"nodes":[{"key":"/d/a","dir":true,"nodes":[{"key":"/d/a/b","value":"1","modifiedIndex":13,"createdIndex":13}],"modifiedIndex":12,"createdIndex":12}],"modifiedIndex":4,"createdIndex":4}}`,
	`{"action":"get","node":{"key":"/big","value":"18446744073709551615","modifiedIndex":18446744073709551615,"createdIndex":1,"ttl":-9223372036854775808}}`,
}

// oddBodies are inputs outside what etcd writes, or at the edges of it:
// some on which github.com/ugorji/go/codec (used before) and encoding/json
// disagreed, the others at the limits of the stream decoder's subset
// (escapes, numbers, nulls, duplicates, spacing, long strings).
var oddBodies = []string{
	``, ` `, `null`, `[]`, `"s"`, `{`, `{"action":"x"`, `{"action":"x"} trailing`, `{"action":"x"}{"action":"y"}`,
	`{"Action":"get"}`, `{"action":"get","Index":5}`, `{"ACTION":"a","action":"b"}`, `{"\u0061ction":"x"}`,
	`{"action":"a","action":null}`, `{"action":"a","action":"b"}`,
	"{\"action\":\"a\x01\"}", "{\"action\":\"a\xff\"}", `{"action":"\ud800"}`, `{"action":"\ud800\udc00"}`, `{"action":"\u0000"}`,
	`{"node":{"modifiedIndex":1.0}}`, `{"node":{"modifiedIndex":1e2}}`, `{"node":{"modifiedIndex":-0}}`, `{"node":{"modifiedIndex":01}}`,
	`{"node":{"modifiedIndex":"1"}}`, `{"node":{"modifiedIndex":18446744073709551616}}`, `{"node":{"ttl":-5}}`, `{"node":{"ttl":1.5}}`,
	`{"node":{"ttl":9223372036854775808}}`, `{"node":{"ttl":-0.0}}`, `{"node":{"ttl":1E0}}`,
	`{"node":{"dir":"true"}}`, `{"node":{"dir":1}}`, `{"node":{"key":1}}`, `{"node":{"key":true}}`,
	`{"node":{"nodes":{}}}`, `{"node":{"nodes":[null]}}`, `{"node":{"nodes":[]}}`, `{"node":{"nodes":null}}`,
	`{"node":{"key":"a"},"node":{"value":"b"}}`, `{"node":{"key":"a"},"node":null}`,
	`{"node":{"expiration":"2026-11-21T11:27:25+01:00"}}`, `{"node":{"expiration":"2026-11-21"}}`,
	`{"node":{"expiration":123}}`, `{"node":{"expiration":null}}`, `{"node":{"expiration":"\u0032026-11-21T11:27:25Z"}}`,
	`{"node":[]}`, `{"node":"x"}`, `{"node":{"modifiedIndex":1,"modifiedIndex":null}}`,
	`{"action":"x",}`, `{"action" "x"}`, `{'action':"x"}`, `{"node":{"dir":True}}`, `{"node":{"value":NaN}}`,
	"{\"action\":\"x\"\f}", "\ufeff{\"action\":\"x\"}", `{"action":"\/\b\f\n\r\t\"\\"}`, `{"action":"\x"}`,
	strings.Repeat(`{"node":{"nodes":[`, 600) + strings.Repeat(`]}}`, 600),
	// Surrogate escapes: pairs, lone ones, and what follows them.
	`{"action":"\ud83d\ude00"}`, `{"action":"\ud800\u0041"}`, `{"action":"\udc00\ud800"}`, `{"action":"\ud800\ud800\udc00"}`,
	`{"action":"\ud800x"}`, `{"action":"a\ud800"}`, `{"action":"\uD83D\uDE00\u00e9\u65e5"}`, `{"action":"\ud800\u12"}`, `{"action":"\u12"}`,
	// Long strings, plain and escaped, and many of them.
	`{"node":{"key":"/k","value":"` + strings.Repeat("v", 4<<10) + `"}}`,
	`{"node":{"key":"/k","value":"` + strings.Repeat("v", 4<<10+1) + `"}}`,
	`{"node":{"key":"/k","value":"` + strings.Repeat(`\"é`, 3<<10) + `"}}`,
	`{"node":{"key":"/k","value":"` + strings.Repeat("\u00e9", 1<<10) + `\ud800"}}`,
	`{"node":{"nodes":[` + strings.Repeat(`{"key":"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","value":"\"b\""},`, 2000) + `{}]}}`,
	`{"node":{"nodes":[` + strings.Repeat(`{"key":"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","value":"\"b\""},`, 2000) + `{"key":1}]}}`,
	// Keys and values cut or spaced where the fast field match looks.
	`{"node":{"key" : "a" , "value":"b","modifiedIndex":1 ,"createdIndex": 2,"ttl":-0}}`,
	"{\"node\":{\"key\":\n\"a\",\"modifiedIndex\":\t1}}", `{"node":{"keys":"a"}}`, `{"node":{"kez":"a"}}`, `{"node":{"k":"a"}}`,
	`{"node":{"modifiedIndex" :1}}`, `{"node":{"modifiedIndexx":1}}`, `{"node":{"ttl":-}}`, `{"node":{"ttl":--1}}`, `{"node":{"ttl":-01}}`,
	`{"node":{"createdIndex":18446744073709551615}}`, `{"node":{"createdIndex":18446744073709551620}}`, `{"node":{"createdIndex":99999999999999999999}}`,
	`{"node":{"ttl":-9223372036854775809}}`, `{"node":{"ttl":9223372036854775807}}`, `{"node":{"dir":false,"nodes":[{}]}}`,
	`{"node":{"expiration":""}}`, `{"node":{"expiration":"2026-11-21T11:27:25.414162477Z"},"prevNode":{"expiration":"2026-11-21T11:27:25Z"}}`,
}

// keyedBodies are the odd bodies with a key in their top-level node, so
// that what they test is not hidden by the refusal of a node without key.
var keyedBodies = func() (out []string) {
	for _, b := range oddBodies {
		if k := strings.ReplaceAll(b, `"node":{"`, `"node":{"key":"/k","`); k != b {
			out = append(out, k)
		}
	}
	return out
}()

// decodeReference is what decodeJSON must match: encoding/json's Decoder,
// and an error for a node without a key, but for a top-level directory
// (etcd's root).
func decodeReference(data []byte) (*Response, error) {
	var r Response
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&r); err != nil {
		return nil, err
	}
	var keyless func(n *Node, top bool) bool
	keyless = func(n *Node, top bool) bool {
		if n == nil {
			return false
		}
		if n.Key == "" && (!top || !n.Dir) {
			return true
		}
		for _, c := range n.Nodes {
			if keyless(c, false) {
				return true
			}
		}
		return false
	}
	if keyless(r.Node, true) || keyless(r.PrevNode, true) {
		return nil, errors.New("a node without a key")
	}
	return &r, nil
}

func FuzzDecodeResponse(f *testing.F) {
	for _, b := range etcdBodies {
		f.Add([]byte(b))
	}
	for _, b := range append(oddBodies, keyedBodies...) {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// In small reads, so that refills land inside every token.
		sizes := []int{1 + len(data)%7, 1 + len(data)%3, 2}
		checkStream(t, "chunks", data, &chunkReader{data: data, sizes: sizes})
		checkStream(t, "one byte", data, iotest.OneByteReader(bytes.NewReader(data)))
		if len(data) <= 512 {
			for k := 1; k < len(data); k++ {
				checkStream(t, fmt.Sprintf("split at %d", k), data, &splitReader{data: data, k: k})
			}
		}
		want, werr := decodeReference(data)
		var got Response
		gerr := decodeJSON(bytes.NewReader(data), &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("input %q: encoding/json error %v, decodeJSON error %v", data, werr, gerr)
		}
		if werr != nil {
			return
		}
		if !reflect.DeepEqual(*want, got) {
			t.Fatalf("input %q:\nencoding/json %s\ndecodeJSON    %s", data, dumpResponse(want), dumpResponse(&got))
		}
	})
}

func dumpResponse(r *Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{Action:%q", r.Action)
	for _, x := range []struct {
		name string
		n    *Node
	}{{"Node", r.Node}, {"PrevNode", r.PrevNode}} {
		fmt.Fprintf(&b, " %s:", x.name)
		dumpNode(&b, x.n)
	}
	b.WriteString("}")
	return b.String()
}

func dumpNode(b *strings.Builder, n *Node) {
	if n == nil {
		b.WriteString("nil")
		return
	}
	fmt.Fprintf(b, "{Key:%q Dir:%v Value:%q C:%d M:%d TTL:%d Exp:%#v Nodes(nil=%v):[", n.Key, n.Dir, n.Value, n.CreatedIndex, n.ModifiedIndex, n.TTL, n.Expiration, n.Nodes == nil)
	for _, c := range n.Nodes {
		dumpNode(b, c)
		b.WriteString(",")
	}
	b.WriteString("]}")
}

func TestDecodeJSONErrors(t *testing.T) {
	var r Response
	if err := decodeJSON(strings.NewReader(" \n"), &r); err != ErrEmptyBody {
		t.Fatalf("empty body: %v", err)
	}
	err := decodeJSON(strings.NewReader(`{"action":"get","node":{"key":"/a"`), &r)
	if !errors.Is(err, ErrInvalidJSON) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated body: %v", err)
	}
	err = decodeJSON(strings.NewReader(`{"action":1}`), &r)
	if !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("bad type: %v", err)
	}
	boom := errors.New("boom")
	err = decodeJSON(io.MultiReader(strings.NewReader(`{"action":"get","node":{"key":"/a"`), iotestErrReader{boom}), &r)
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("read error: %v", err)
	}
	// A body as etcd writes it decodes with the stream decoder.
	var ok Response
	if err := decodeJSON(strings.NewReader(etcdBodies[2]), &ok); err != nil || ok.PrevNode.Value != "1" || ok.Node.CreatedIndex != 6 {
		t.Fatalf("got %+v, %v", ok, err)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// chunkReader returns its data in reads of the sizes given in turn
// (cycling), to put the decoder's refills at every possible place.
type chunkReader struct {
	data  []byte
	sizes []int
	n     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := min(c.sizes[c.n%len(c.sizes)], len(p), len(c.data))
	c.n++
	k = copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// checkStream decodes data from r with decodeResponseStream and compares
// with encoding/json on the same bytes.
func checkStream(t *testing.T, name string, data []byte, r io.Reader) {
	t.Helper()
	want, werr := decodeReference(data)
	var got Response
	gerr := decodeResponseStream(r, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s: input %q: encoding/json error %v, stream error %v", name, data, werr, gerr)
	}
	if werr == nil && !reflect.DeepEqual(*want, got) {
		t.Fatalf("%s: input %q:\nencoding/json %s\nstream        %s", name, data, dumpResponse(want), dumpResponse(&got))
	}
}

func TestDecodeStreamRefills(t *testing.T) {
	_, listing := benchBodies(t)
	bodies := [][]byte{listing}
	for _, b := range append(append(append([]string{}, etcdBodies...), oddBodies...), keyedBodies...) {
		bodies = append(bodies, []byte(b))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, data := range bodies {
		checkStream(t, "whole", data, bytes.NewReader(data))
		checkStream(t, "one byte", data, iotest.OneByteReader(bytes.NewReader(data)))
		checkStream(t, "half", data, iotest.HalfReader(bytes.NewReader(data)))
		checkStream(t, "data+EOF", data, iotest.DataErrReader(bytes.NewReader(data)))
		for range 5 {
			sizes := make([]int, 1+rng.IntN(8))
			for i := range sizes {
				sizes[i] = 1 + rng.IntN(64)
				if rng.IntN(4) == 0 {
					sizes[i] = 1 + rng.IntN(40000)
				}
			}
			checkStream(t, fmt.Sprintf("chunks %v", sizes), data, &chunkReader{data: data, sizes: sizes})
		}
	}
}

// TestDecodeStreamFastPath checks that what etcd writes is decoded by the
// streaming decoder itself, not handed to encoding/json.
func TestDecodeStreamFastPath(t *testing.T) {
	_, listing := benchBodies(t)
	for _, b := range append([]string{string(listing)}, etcdBodies...) {
		for _, r := range []io.Reader{strings.NewReader(b), iotest.OneByteReader(strings.NewReader(b))} {
			d := &streamDecoder{r: r}
			var resp Response
			if !d.response(&resp) {
				t.Errorf("etcd body not decoded by the fast path (at byte %d): %.200s", d.i, b)
			}
		}
	}
}

// stopReader fails the test if read past its data: the decoder must not
// wait for more of a body once its object is complete (a watch's body may
// stay open after its event).
type stopReader struct {
	t    *testing.T
	data []byte
}

func (s *stopReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		s.t.Fatal("read past the end of the object")
	}
	n := copy(p, s.data[:1])
	s.data = s.data[n:]
	return n, nil
}

func TestDecodeStreamStopsAtObjectEnd(t *testing.T) {
	for _, b := range etcdBodies {
		b = strings.TrimSpace(b)
		var r Response
		if err := decodeResponseStream(&stopReader{t: t, data: []byte(b)}, &r); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
}

// flakyReader gives its data, then an error once, then more data: the
// fallback must see the error as the decoder saw it, not read on.
type flakyReader struct {
	data, more []byte
	err        error
}

func (f *flakyReader) Read(p []byte) (int, error) {
	if len(f.data) > 0 {
		n := copy(p, f.data)
		f.data = f.data[n:]
		return n, nil
	}
	if f.err != nil {
		err := f.err
		f.err = nil
		return 0, err
	}
	if len(f.more) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.more)
	f.more = f.more[n:]
	return n, nil
}

func TestDecodeStreamReadErrorAndMerge(t *testing.T) {
	boom := errors.New("boom")
	var r Response
	err := decodeResponseStream(&flakyReader{data: []byte(`{"action":"get","node":{"key"`), err: boom, more: []byte(`:"/a"}}`)}, &r)
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("got %v, want the read error", err)
	}
	// A Response that already holds nodes is merged into by
	// encoding/json, and so is left to it.
	r = Response{Node: &Node{Key: "/old", TTL: 5}, Index: 7}
	if err := decodeResponseStream(strings.NewReader(`{"node":{"key":"/new"}}`), &r); err != nil || r.Node.Key != "/new" || r.Node.TTL != 5 || r.Index != 7 {
		t.Fatalf("merge: %+v, %v", r, err)
	}
	// A field the body sets is set, to "" too; others are left alone.
	r = Response{Action: "x", Index: 7}
	if err := decodeResponseStream(strings.NewReader(`{"action":"","node":null}`), &r); err != nil || r.Action != "" || r.Index != 7 {
		t.Fatalf("empty action: %+v, %v", r, err)
	}
	r = Response{Action: "x"}
	if err := decodeResponseStream(strings.NewReader(`{"action":null}`), &r); err != nil || r.Action != "x" {
		t.Fatalf("null action: %+v, %v", r, err)
	}
	// A fallback leaves the fields encoding/json does not set as they were.
	r = Response{Action: "x", Index: 7}
	if err := decodeResponseStream(strings.NewReader(`{"node":{"key":"/a","key":"/b"}}`), &r); err != nil || r.Node.Key != "/b" || r.Action != "x" || r.Index != 7 {
		t.Fatalf("fallback: %+v, %v", r, err)
	}
}

// splitReader returns data in two reads, split at k.
type splitReader struct {
	data []byte
	k    int
}

func (s *splitReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := len(s.data)
	if s.k > 0 {
		n = s.k
	}
	n = copy(p, s.data[:n])
	s.data = s.data[n:]
	s.k -= n
	return n, nil
}

// TestDecodeStreamEverySplit decodes every body split at every byte
// boundary, and one byte a read, and compares with encoding/json.
func TestDecodeStreamEverySplit(t *testing.T) {
	for _, b := range append(append(append([]string{}, etcdBodies...), oddBodies...), keyedBodies...) {
		data := []byte(b)
		if len(data) > 2048 {
			continue // the long ones are split by TestDecodeStreamRefills
		}
		for k := 0; k <= len(data); k++ {
			checkStream(t, fmt.Sprintf("split at %d", k), data, &splitReader{data: data, k: k})
		}
		checkStream(t, "one byte", data, iotest.OneByteReader(bytes.NewReader(data)))
	}
}

// bigListing returns a listing of n keys as etcd writes it, with escapes,
// non-ASCII text, expirations and TTLs among its values, and, past the
// first MiB when n is large enough, a value of 1.5 MB with escapes and
// one without: longer than the decoder's window.
func bigListing(t testing.TB, n int) []byte {
	t.Helper()
	exp := time.Date(2026, 11, 21, 11, 27, 25, 414162477, time.UTC)
	root := &Node{Key: "/big", Dir: true, CreatedIndex: 4, ModifiedIndex: 4}
	var dir *Node
	for i := 0; i < n; i++ {
		if i%500 == 0 {
			dir = &Node{Key: fmt.Sprintf("/big/d%04d", i/500), Dir: true, CreatedIndex: uint64(i + 5), ModifiedIndex: uint64(i + 5)}
			root.Nodes = append(root.Nodes, dir)
		}
		nd := &Node{Key: fmt.Sprintf("%s/k%07d", dir.Key, i), CreatedIndex: uint64(1000 + i), ModifiedIndex: uint64(2000 + 7*i)}
		switch i % 7 {
		case 0:
			nd.Value = fmt.Sprintf(`{"name":"service-%d","port":%d,"tags":["a","b"]}`, i, 8000+i%1000)
		case 1:
			nd.Value = fmt.Sprintf("héllo wörld 日本 %d <b>&</b> \u2028 \U0001F600", i)
		case 2:
			nd.Value, nd.Expiration, nd.TTL = "v", &exp, int64(30+i%100)
		case 3:
			nd.Value = strings.Repeat("x", i%300)
		case 4:
			nd.Value = "line\nbreak\ttab\\back\x01ctl"
		default:
			nd.Value = fmt.Sprintf("%032d", i)
		}
		if n >= 20_000 && (i == n/2 || i == n/2+1) {
			nd.Value = strings.Repeat(`a"b\`, 3<<19/4)
			if i == n/2+1 {
				nd.Value = strings.Repeat("plain", 3<<19/5)
			}
		}
		dir.Nodes = append(dir.Nodes, nd)
	}
	b, err := json.Marshal(Response{Action: "get", Node: root})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeWindow: a body larger than the decoder's window, read whole,
// in pieces of every size and one byte a read, decodes as encoding/json
// decodes it, and the window slides instead of holding the body.
func TestDecodeWindow(t *testing.T) {
	big := bigListing(t, 20_000)
	small := bigListing(t, 8_000) // just over maxWindow
	var spaced bytes.Buffer
	if err := json.Indent(&spaced, small, " ", "\t"); err != nil {
		t.Fatal(err)
	}
	require := func(name string, data []byte, r io.Reader) {
		t.Helper()
		want, err := decodeReference(data)
		if err != nil {
			t.Fatal(err)
		}
		d := &streamDecoder{}
		var got Response
		if err := d.decode(r, &got); err != nil {
			t.Fatalf("%s (%d bytes): %v", name, len(data), err)
		}
		if !reflect.DeepEqual(*want, got) {
			t.Fatalf("%s (%d bytes): not encoding/json's answer", name, len(data))
		}
		if d.base == 0 || d.base+len(d.buf) != len(data) {
			t.Fatalf("%s (%d bytes): the window did not slide (%d bytes dropped, %d in the window)", name, len(data), d.base, len(d.buf))
		}
		// The window holds at most the first MiB and the room to read,
		// or the longest string and the room to read.
		if limit := max(maxWindow, 2*(3<<19+4*minRead)); cap(d.buf) > limit {
			t.Fatalf("%s (%d bytes): window of %d bytes, want at most %d", name, len(data), cap(d.buf), limit)
		}
	}
	if len(small) <= maxWindow || len(big) < 5<<20 {
		t.Fatalf("bodies of %d and %d bytes", len(small), len(big))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, data := range [][]byte{big, spaced.Bytes(), small} {
		require("whole", data, bytes.NewReader(data))
		sizes := []int{1, 7, 1 + rng.IntN(64<<10), 3, 1 + rng.IntN(300<<10), 2}
		require(fmt.Sprintf("chunks %v", sizes), data, &chunkReader{data: data, sizes: sizes})
	}
	require("half", small, iotest.HalfReader(bytes.NewReader(small)))
	require("one byte", small, iotest.OneByteReader(bytes.NewReader(small)))
}

// TestDecodeWindowSmallAnswers: a decoder that is used again for small
// answers keeps its first window. (Its window was grown by minRead at its
// first read after the pool, although the answer fitted: every pooled
// decoder held 40 KiB, and each decoder made after a garbage collection
// allocated both windows.) A longer answer still grows it.
func TestDecodeWindowSmallAnswers(t *testing.T) {
	small := []byte(`{"action":"get","node":{"key":"/a","value":"x","modifiedIndex":4,"createdIndex":4}}`)
	d := &streamDecoder{}
	for i := range 3 {
		var got Response
		// The body comes in one read and the end in another, as from a
		// connection.
		if err := d.decode(&chunkReader{data: small, sizes: []int{len(small)}}, &got); err != nil {
			t.Fatal(err)
		}
		if got.Node == nil || got.Node.Key != "/a" {
			t.Fatalf("answer %d: %+v", i, got)
		}
		if cap(d.buf) != firstWindow {
			t.Fatalf("answer %d: window of %d bytes, want %d", i, cap(d.buf), firstWindow)
		}
		if !d.reset() {
			t.Fatal("not pooled")
		}
	}
	big := bigListing(t, 100)
	if len(big) <= firstWindow {
		t.Fatalf("a body of %d bytes", len(big))
	}
	var got Response
	if err := d.decode(bytes.NewReader(big), &got); err != nil {
		t.Fatal(err)
	}
	if cap(d.buf) < len(big) {
		t.Fatalf("a window of %d bytes for a body of %d", cap(d.buf), len(big))
	}
}

// windowCases are bodies over maxFallbackBytes with something wrong, or
// outside what etcd writes, before, at and after the first MiB.
func windowCases(t *testing.T) map[string][]byte {
	base := bigListing(t, 8_000)
	cases := map[string][]byte{}
	for _, at := range []int{100, maxFallbackBytes + 40, maxWindow + 20<<10, len(base) - 3} {
		pos := func(sub string) int {
			if i := bytes.Index(base[at:], []byte(sub)); i >= 0 {
				return at + i
			}
			return -1
		}
		edit := func(name string, i int, old, new string) {
			if i < 0 {
				return
			}
			b := slices.Clone(base[:i])
			b = append(b, new...)
			b = append(b, base[i+len(old):]...)
			cases[fmt.Sprintf("%s at %d", name, i)] = b
		}
		cases[fmt.Sprintf("cut at %d", at)] = base[:at]
		cases[fmt.Sprintf("read error at %d", at)] = base[:at]
		if at < maxFallbackBytes || at > len(base)-100 {
			continue // the edits: where the window keeps all, and where it slid
		}
		edit("field name case", pos(`"modifiedIndex"`), `"modifiedIndex"`, `"ModifiedIndex"`)
		edit("unknown field", pos(`"key"`), `"key"`, `"x":1,"key"`)
		edit("duplicate key", pos(`"key"`), `"key"`, `"key":"/dup","key"`)
		edit("escaped name", pos(`"value"`), `"value"`, `"\u0076alue"`)
		edit("syntax error", pos(`,`), `,`, `;`)
		edit("float", pos(`"createdIndex":`), `"createdIndex":`, `"createdIndex":1.5,"ttl":`)
		edit("keyless node", pos(`{"key"`), `{"key"`, `{},{"key"`)
		edit("invalid UTF-8", pos(`"value":"`), `"value":"`, "\"value\":\"\xff")
	}
	return cases
}

// TestDecodeWindowErrorsUnchanged: on bodies over the first MiB, the
// decoder with a window answers exactly as it did when it kept the whole
// body (the same Response, or an error with the same text that matches
// the same sentinels), read whole or in small pieces.
func TestDecodeWindowErrorsUnchanged(t *testing.T) {
	boom := errors.New("boom")
	dropped := 0
	for name, data := range windowCases(t) {
		if strings.HasPrefix(name, "read error") {
			if compareWindow(t, name, func() io.Reader { return io.MultiReader(bytes.NewReader(data), iotestErrReader{boom}) }) {
				dropped++
			}
			continue
		}
		if compareWindow(t, name+"/whole", func() io.Reader { return bytes.NewReader(data) }) {
			dropped++
		}
		if strings.HasPrefix(name, "cut") {
			compareWindow(t, name+"/chunks", func() io.Reader { return &chunkReader{data: data, sizes: []int{5000, 3, 70000}} })
		}
	}
	if dropped < 10 {
		t.Fatalf("only %d cases failed after the window slid", dropped)
	}
}

// compareWindow decodes what newReader gives with and without the window
// and fails unless the answers are the same. It reports whether the
// window failed after dropping the start of the body.
func compareWindow(t *testing.T, name string, newReader func() io.Reader) (droppedErr bool) {
	t.Helper()
	var want, got Response
	keep := &streamDecoder{keepAll: true}
	werr := keep.decode(newReader(), &want)
	win := &streamDecoder{}
	gerr := win.decode(newReader(), &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%s: kept whole: %v; window: %v", name, werr, gerr)
	}
	if werr == nil {
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%s: the answers differ", name)
		}
		return false
	}
	if werr.Error() != gerr.Error() {
		t.Fatalf("%s: kept whole: %v; window: %v", name, werr, gerr)
	}
	for _, target := range []error{ErrInvalidJSON, io.ErrUnexpectedEOF, errNodeWithoutKey, errFallbackTooLarge, ErrEmptyBody} {
		if errors.Is(werr, target) != errors.Is(gerr, target) {
			t.Fatalf("%s: kept whole: %v; window: %v; they differ on %v", name, werr, gerr, target)
		}
	}
	return win.base > 0
}

// windowPrefix is the start of a listing over maxFallbackBytes whose
// nodes array is left open, for FuzzDecodeWindow.
func windowPrefix(t testing.TB) []byte {
	b := bigListing(t, 9_000)
	i := bytes.LastIndex(b, []byte("]"))
	i = bytes.LastIndex(b[:i], []byte("]"))
	if i < maxWindow+minRead {
		t.Fatalf("the prefix (%d bytes) would not move the window", i)
	}
	return append(b[:i:i], ',')
}

// FuzzDecodeWindow appends arbitrary bytes to the open nodes array of a
// listing over the first MiB, and checks that the decoder with a window
// answers as it did when it kept the whole body, read whole and in small
// pieces (the comparison with encoding/json itself is FuzzDecodeResponse's).
func FuzzDecodeWindow(f *testing.F) {
	prefix := windowPrefix(f)
	for _, s := range []string{`{"key":"/x"}]}]}}`, `{"key":"/x","Value":"y"}]}]}}`, `{"key":"/x"}]}]}`, `{"key":"/x"}]}]}} trailing`,
		`{"key":"/x","key":"/y"}]}]}}`, `{}]}]}}`, `null]}]}}`, `{"key":"/x","ttl":1e3}]}]}}`, `{"key":"\u002fx"}]}]}}`, ``, `{"key":"/x`} {
		f.Add([]byte(s))
	}
	for _, b := range etcdBodies {
		f.Add([]byte(b[strings.Index(b, `"node":`)+7:]))
	}
	f.Fuzz(func(t *testing.T, tail []byte) {
		data := append(slices.Clone(prefix), tail...)
		compareWindow(t, "whole", func() io.Reader { return bytes.NewReader(data) })
		_ = compareWindow(t, "chunks", func() io.Reader {
			return &chunkReader{data: data, sizes: []int{1 << 20, 1 + len(tail)%7, 1 + len(tail)%3, 2}}
		})
	})
}

// TestFieldWords checks the words nodeField compares keys with.
func TestFieldWords(t *testing.T) {
	word := func(s string, mask uint64) uint64 {
		var b [8]byte
		copy(b[:], s)
		return binary.LittleEndian.Uint64(b[:]) & mask
	}
	for _, c := range []struct {
		name string
		got  []uint64
		mask []uint64
	}{
		{`"key":`, []uint64{wordKey}, []uint64{mask6}},
		{`"value":`, []uint64{wordValue}, []uint64{^uint64(0)}},
		{`"modifiedIndex":`, []uint64{wordModifiedIndex0, wordModifiedIndex1}, []uint64{^uint64(0), ^uint64(0)}},
		{`"createdIndex":`, []uint64{wordCreatedIndex0, wordCreatedIndex1}, []uint64{^uint64(0), mask7}},
		{`"dir":`, []uint64{wordDir}, []uint64{mask6}},
		{`"nodes":`, []uint64{wordNodes}, []uint64{^uint64(0)}},
		{`"ttl":`, []uint64{wordTTL}, []uint64{mask6}},
		{`"expiration":`, []uint64{wordExpiration0, wordExpiration1}, []uint64{^uint64(0), mask5}},
	} {
		if want := (len(c.name) + 7) / 8; len(c.got) != want {
			t.Fatalf("%s: %d words, want %d", c.name, len(c.got), want)
		}
		for k, w := range c.got {
			part := c.name[8*k:]
			if len(part) > 8 {
				part = part[:8]
			}
			if want := word(part, c.mask[k]); w != want || w != w&c.mask[k] || bits.Len64(c.mask[k]) != 8*len(part) {
				t.Errorf("%s word %d: %#x, want %#x (mask %#x)", c.name, k, w, want, c.mask[k])
			}
		}
	}
}

// TestDecodeDigits checks the integers of nodes, of every length, against
// strconv, with what follows them in the same eight bytes or not.
func TestDecodeDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var nums []string
	for n := 1; n <= 21; n++ {
		for k := 0; k < 50; k++ {
			b := []byte{byte('1' + rng.IntN(9))}
			for len(b) < n {
				b = append(b, byte('0'+rng.IntN(10)))
			}
			nums = append(nums, string(b))
		}
		nums = append(nums, strings.Repeat("9", n), "1"+strings.Repeat("0", n-1), "0"+strings.Repeat("1", n-1))
	}
	nums = append(nums, "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-0", "-01", "-")
	for _, num := range nums {
		for _, tail := range []string{"}", `,"ttl":1}`, ".5}", "e3}", "E3}", " }", "x}"} {
			body := `{"action":"get","node":{"key":"/a","modifiedIndex":` + num + tail + `}`
			want, werr := decodeReference([]byte(body))
			var got Response
			gerr := decodeJSON(strings.NewReader(body), &got)
			if (werr == nil) != (gerr == nil) || werr == nil && !reflect.DeepEqual(*want, got) {
				t.Fatalf("%s: encoding/json %v %v, decodeJSON %v %v", body, want, werr, got, gerr)
			}
			ttl := `{"action":"get","node":{"key":"/a","ttl":` + num + tail + `}`
			want, werr = decodeReference([]byte(ttl))
			got = Response{}
			gerr = decodeJSON(strings.NewReader(ttl), &got)
			if (werr == nil) != (gerr == nil) || werr == nil && !reflect.DeepEqual(*want, got) {
				t.Fatalf("%s: encoding/json %v %v, decodeJSON %v %v", ttl, want, werr, got, gerr)
			}
			// The stream decoder itself takes the canonical ones.
			if _, err := strconv.ParseUint(num, 10, 64); err == nil && num[0] != '0' || num == "0" {
				if tail == "}" || tail[0] == ',' {
					d := &streamDecoder{r: strings.NewReader(body), hold: -1}
					var r Response
					if !d.response(&r) || strconv.FormatUint(r.Node.ModifiedIndex, 10) != num {
						t.Fatalf("%s: stream decoder gave %+v", body, r.Node)
					}
				}
			}
		}
	}
}

// TestSpecialBytes checks that specialBytes tells whether a word holds a
// special byte and where the first one is, for every byte value at every
// position, after plain bytes and before arbitrary ones.
func TestSpecialBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	plain := func() byte {
		for {
			if c := byte(rng.IntN(256)); !special[c] {
				return c
			}
		}
	}
	for round := 0; round < 64; round++ {
		for p := 0; p < 8; p++ {
			for v := 0; v < 256; v++ {
				var w [8]byte
				for k := range w {
					if k < p {
						w[k] = plain()
					} else if round%2 == 0 {
						w[k] = byte(rng.IntN(256))
					} else {
						w[k] = plain()
					}
				}
				w[p] = byte(v)
				want := -1
				for k, c := range w {
					if special[c] {
						want = k
						break
					}
				}
				m := specialBytes(binary.LittleEndian.Uint64(w[:]))
				got := -1
				if m != 0 {
					got = bits.TrailingZeros64(m) >> 3
				}
				if got != want {
					t.Fatalf("%q: first special byte at %d, specialBytes says %d (%#x)", w, want, got, m)
				}
			}
		}
	}
}

// TestDecodeLeafMutations changes every byte of a listing whose keys are
// in the form the decoder takes in one step (see leaf), in turn, into
// bytes that end, break or extend its tokens, and compares the stream
// decoder with encoding/json on each result, read whole and in small
// reads.
func TestDecodeLeafMutations(t *testing.T) {
	body := `{"action":"get","node":{"key":"/d","dir":true,"nodes":[` +
		`{"key":"/d/a","value":"xy","modifiedIndex":12,"createdIndex":9},` +
		`{"key":"/d/b","value":"","modifiedIndex":1234567,"createdIndex":12345678},` +
		`{"key":"/d/c","value":"0123456789abcdef0123456789","modifiedIndex":0,"createdIndex":7654321}` +
		`],"modifiedIndex":3,"createdIndex":3}}`
	if d, resp := (&streamDecoder{r: strings.NewReader(body), hold: -1}), new(Response); !d.response(resp) || len(resp.Node.Nodes) != 3 {
		t.Fatal("the body is not decoded by the stream decoder itself")
	}
	for i := range len(body) {
		for _, c := range []byte{' ', '"', '\\', '0', '9', '}', ']', ',', ':', '.', 'e', 'x', '{', 0x1f, 0x80} {
			data := []byte(body)
			if data[i] == c {
				continue
			}
			data[i] = c
			checkStream(t, "whole", data, bytes.NewReader(data))
			checkStream(t, "chunks", data, &chunkReader{data: data, sizes: []int{1 + i%13, 7, 3}})
		}
		// And with the byte removed, and a space inserted.
		cut := []byte(body[:i] + body[i+1:])
		checkStream(t, "cut", cut, bytes.NewReader(cut))
		spaced := []byte(body[:i] + " " + body[i:])
		checkStream(t, "space", spaced, bytes.NewReader(spaced))
	}
}

// TestStringSlabsAreBounded: the strings of a decoded answer share slabs
// of at most maxStringSlab bytes, so that a string kept alone keeps at
// most that much of its answer alive (docs/decoding.md). The decoder is
// given the strings of a listing as it would while decoding it with a
// large window; each string must lie in the slab current when it was made.
// Then a whole listing is decoded: its strings, cut from shared slabs, lie
// end to end in memory in few runs. (Two slabs may happen to lie end to
// end too, so a run's length says nothing about a slab's.)
func TestStringSlabsAreBounded(t *testing.T) {
	var r Response
	if err := decodeJSON(bytes.NewReader(plainListing()), &r); err != nil {
		t.Fatal(err)
	}
	var strs []string
	var walk func(n *Node)
	walk = func(n *Node) {
		strs = append(strs, n.Key, n.Value)
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(r.Node)
	if len(strs) < 10000 {
		t.Fatalf("%d strings decoded", len(strs))
	}

	d := &streamDecoder{buf: make([]byte, maxWindow)}
	slabs := 0
	var last uintptr
	for _, s := range strs {
		got := d.newString([]byte(s))
		if got != s {
			t.Fatalf("newString(%q) = %q", s, got)
		}
		if len(got) <= 1 {
			continue
		}
		slab, size := uintptr(unsafe.Pointer(unsafe.StringData(d.strs.String()))), d.strs.Cap()
		if slab != last {
			slabs++
			last = slab
		}
		if size > maxStringSlab {
			t.Fatalf("a slab of %d bytes, above %d", size, maxStringSlab)
		}
		if at := uintptr(unsafe.Pointer(unsafe.StringData(got))); at < slab || at+uintptr(len(got)) > slab+uintptr(size) {
			t.Fatalf("%q lies outside the current slab", s)
		}
	}

	runs := 0
	for i := 0; i < len(strs); {
		end := uintptr(unsafe.Pointer(unsafe.StringData(strs[i]))) + uintptr(len(strs[i]))
		j := i + 1
		for ; j < len(strs) && len(strs[j]) > 0 && uintptr(unsafe.Pointer(unsafe.StringData(strs[j]))) == end; j++ {
			end += uintptr(len(strs[j]))
		}
		runs++
		i = j
	}
	if runs > len(strs)/10 {
		t.Errorf("%d runs for %d strings: they are not shared", runs, len(strs))
	}
	t.Logf("%d strings: %d slabs made from them one by one; in %d runs in the decoded answer", len(strs), slabs, runs)
}
