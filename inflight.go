package client

import (
	"sync"
	"sync/atomic"
)

// inflightShards spreads the in-flight set over locks, so that concurrent
// requests rarely meet on one.
const inflightShards = 16

// inflightSet holds the attempts in flight, so that Close can cancel them
// all. Adding and removing allocate nothing once a shard's map has grown.
type inflightSet struct {
	next   atomic.Uint32
	shards [inflightShards]inflightShard
}

type inflightShard struct {
	mu sync.Mutex
	m  map[*attemptState]struct{}
}

func (f *inflightSet) add(st *attemptState) {
	sh := &f.shards[f.next.Add(1)%inflightShards]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[*attemptState]struct{})
	}
	sh.m[st] = struct{}{}
	sh.mu.Unlock()
	st.shard = sh
}

// removeInflight removes st from the set it was added to.
func removeInflight(st *attemptState) {
	sh := st.shard
	sh.mu.Lock()
	delete(sh.m, st)
	sh.mu.Unlock()
}

// cancelAll cancels every attempt in flight with cause.
func (f *inflightSet) cancelAll(cause error) {
	f.each(func(st *attemptState) bool {
		st.cancel(cause)
		return true
	})
}

// each calls visit for the attempts in the set, a shard at a time with its
// lock held, until visit returns false.
func (f *inflightSet) each(visit func(st *attemptState) bool) {
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		for st := range sh.m {
			if !visit(st) {
				sh.mu.Unlock()
				return
			}
		}
		sh.mu.Unlock()
	}
}
