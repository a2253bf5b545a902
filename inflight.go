package client

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// inflightChunkSlots is the number of slots in a chunk of an inflightSet,
// and inflightProbes the number of slots an add tries, at random, before it
// grows the set: one add in 256 grows it while half its slots are taken,
// most adds once nine in ten are, so that it stays well below full and an
// add mostly finds a free slot at its first or second try.
const (
	inflightChunkSlots = 64
	inflightProbes     = 8
)

// inflightSet holds attempts in flight, so that Close can cancel them all
// and the watchdog can look at its reads. Adding and removing take no lock:
// an attempt takes a free slot with a compare-and-swap and frees it with a
// store. Under many concurrent callers a lock here, however short its hold,
// made callers queue behind a holder the scheduler had set aside (see
// bench/notes.md). The set grows by doubling and never shrinks; slots never
// move, so an attempt keeps its slot from add to remove.
//
// The operations are sequentially consistent atomics, so an attempt added
// after Close set the client's closed flag either sees the flag, or is
// seen by Close's walk of the set (see httpClusterClient.attempt).
type inflightSet struct {
	tab    atomic.Pointer[inflightTable]
	growMu sync.Mutex
}

// inflightTable is the set's chunks, a power of two of them. A table is
// never changed once published: growing publishes a new one that holds
// the same chunks and as many new ones.
type inflightTable struct {
	chunks []*inflightChunk
}

type inflightChunk [inflightChunkSlots]atomic.Pointer[attemptState]

// add puts st in the set.
func (f *inflightSet) add(st *attemptState) {
	t := f.tab.Load()
	for {
		if t == nil {
			t = f.grow(nil)
		}
		mask := uint32(len(t.chunks)*inflightChunkSlots - 1)
		for range inflightProbes {
			i := rand.Uint32() & mask
			slot := &t.chunks[i/inflightChunkSlots][i%inflightChunkSlots]
			if slot.Load() == nil && slot.CompareAndSwap(nil, st) {
				st.slot = slot
				return
			}
		}
		t = f.grow(t)
	}
}

// grow publishes a table twice the size of full (or the first one, full
// nil) unless another add did already, and returns the set's table.
func (f *inflightSet) grow(full *inflightTable) *inflightTable {
	f.growMu.Lock()
	defer f.growMu.Unlock()
	if t := f.tab.Load(); t != full {
		return t
	}
	n := 1
	if full != nil {
		n = 2 * len(full.chunks)
	}
	chunks := make([]*inflightChunk, n)
	if full != nil {
		copy(chunks, full.chunks)
	}
	for i := range chunks {
		if chunks[i] == nil {
			chunks[i] = new(inflightChunk)
		}
	}
	t := &inflightTable{chunks: chunks}
	f.tab.Store(t)
	return t
}

// removeInflight removes st from the set it was added to.
func removeInflight(st *attemptState) {
	st.slot.Store(nil)
}

// cancelAll cancels every attempt in flight with cause.
func (f *inflightSet) cancelAll(cause error) {
	f.each(func(st *attemptState) bool {
		st.cancel(cause)
		return true
	})
}

// each calls visit for the attempts in the set until visit returns false.
// An attempt removed during the walk may be visited after its removal, and
// one added during the walk may be missed.
func (f *inflightSet) each(visit func(st *attemptState) bool) {
	t := f.tab.Load()
	if t == nil {
		return
	}
	for _, ch := range t.chunks {
		for i := range ch {
			if st := ch[i].Load(); st != nil && !visit(st) {
				return
			}
		}
	}
}
