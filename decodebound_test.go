package client

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes allocated while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeBoundsAllocation: a node without a key is refused (etcd sends
// none but the root), and what an answer may allocate is bounded by a
// small multiple of its size, whatever its content.
func TestDecodeBoundsAllocation(t *testing.T) {
	const n = 700_000
	empty := `{"action":"get","node":{"dir":true,"nodes":[` + strings.Repeat(`{},`, n) + `{}]}}`
	var resp Response
	var err error
	got := allocated(func() { err = decodeJSON(strings.NewReader(empty), &resp) })
	if !errors.Is(err, ErrInvalidJSON) || !errors.Is(err, errNodeWithoutKey) {
		t.Fatalf("%d empty nodes: %v, want a node without a key refused", n, err)
	}
	if limit := uint64(4 * len(empty)); got > limit {
		t.Errorf("%d empty nodes (%d bytes): %d bytes allocated, want at most %d", n, len(empty), got, limit)
	}

	// The smallest nodes etcd could send, many of them.
	minimal := `{"action":"get","node":{"dir":true,"nodes":[` + strings.Repeat(`{"key":"a"},`, n) + `{"key":"a"}]}}`
	resp = Response{}
	// What the answer keeps live is measured from a baseline taken with
	// minimal already allocated, so that what earlier tests of the
	// process left live does not count; the bound is 11× the body for the
	// answer alone (12× with the body itself).
	var base, live runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	got = allocated(func() {
		err = decodeJSON(strings.NewReader(minimal), &resp)
		runtime.GC()
		runtime.ReadMemStats(&live)
	})
	if err != nil || len(resp.Node.Nodes) != n+1 {
		t.Fatalf("minimal nodes: %v", err)
	}
	if limit := uint64(20 * len(minimal)); got > limit {
		t.Errorf("%d minimal nodes (%d bytes): %d bytes allocated, want at most %d (20×)", n+1, len(minimal), got, limit)
	}
	kept := live.HeapAlloc - min(base.HeapAlloc, live.HeapAlloc)
	if limit := uint64(11 * len(minimal)); kept > limit {
		t.Errorf("%d minimal nodes (%d bytes): %d bytes kept live by the answer, want at most %d (11×)", n+1, len(minimal), kept, limit)
	}
	t.Logf("%d bytes of minimal nodes: %d bytes allocated (%.1f×), %d bytes kept live by the answer (%.1f×)", len(minimal), got,
		float64(got)/float64(len(minimal)), kept, float64(kept)/float64(len(minimal)))
	runtime.KeepAlive(minimal)

	// A listing as etcd writes it, for the record.
	_, listing := benchBodies(t)
	resp = Response{}
	got = allocated(func() { err = decodeJSON(bytes.NewReader(listing), &resp) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd listing of %d bytes: %d bytes allocated (%.1f×)", len(listing), got, float64(got)/float64(len(listing)))

	// Outside etcd's form, a large answer is not handed to encoding/json.
	odd := `{"action":"get","extra":1,"node":{"dir":true,"nodes":[` + strings.Repeat(`{"key":"a"},`, n) + `{"key":"a"}]}}`
	resp = Response{}
	err = decodeJSON(bytes.NewReader([]byte(odd)), &resp)
	if !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("large odd answer: %v, want ErrInvalidJSON", err)
	}
	// A small one still is, and the root (no key) is accepted.
	resp = Response{}
	if err := decodeJSON(strings.NewReader(`{"action":"get","extra":1,"node":{"dir":true,"nodes":[{"key":"/a"}]}}`), &resp); err != nil || resp.Node.Nodes[0].Key != "/a" {
		t.Fatalf("small odd answer: %v", err)
	}
}
