package client

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// inflightChunkSlots is the number of slots in a chunk of an inflightSet,
// and inflightProbes the number of slots an add tries, at random, before it
// walks the whole set: while at most half the slots are taken, an add
// finds a free one at its first try at least half the time, and one add in
// 256 or fewer, on average, walks the set.
const (
	inflightChunkSlots = 64
	inflightProbes     = 8
)

// inflightSet holds attempts in flight, so that Close can cancel them all
// and the watchdog can look at its reads. Adding and removing take no lock:
// an attempt takes a free slot with a compare-and-swap and frees it with a
// store. Under many concurrent callers a lock here, however short its hold,
// made callers queue behind a holder the scheduler had set aside (see
// bench/notes.md). The set doubles when an add finds more than half of its
// slots taken, so it has at most four slots (of 8 bytes) for each attempt
// of the most it held at once, and at least 64; it never shrinks. Slots
// never move, so an attempt keeps its slot from add to remove.
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

// slots returns how many slots the table has.
func (t *inflightTable) slots() int { return len(t.chunks) * inflightChunkSlots }

// add puts st in the set.
func (f *inflightSet) add(st *attemptState) {
	t := f.tab.Load()
	for {
		if t == nil {
			t = f.grow(nil)
		}
		mask := uint32(t.slots() - 1)
		for range inflightProbes {
			i := rand.Uint32() & mask
			if take(&t.chunks[i/inflightChunkSlots][i%inflightChunkSlots], st) {
				return
			}
		}
		if t.takeAny(st) {
			return
		}
		t = f.grow(t)
	}
}

// take puts st in slot if it is free.
func take(slot *atomic.Pointer[attemptState], st *attemptState) bool {
	if slot.Load() == nil && slot.CompareAndSwap(nil, st) {
		st.slot = slot
		return true
	}
	return false
}

// takeAny puts st in the first free slot of t, unless more than half of
// t's slots are taken (or none is free by the time it looks for one).
func (t *inflightTable) takeAny(st *attemptState) bool {
	taken := 0
	for _, ch := range t.chunks {
		for i := range ch {
			if ch[i].Load() != nil {
				taken++
			}
		}
	}
	if 2*taken > t.slots() {
		return false
	}
	for _, ch := range t.chunks {
		for i := range ch {
			if take(&ch[i], st) {
				return true
			}
		}
	}
	return false
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
