package client

import "sync"

// AvoidStale wraps base for plain reads (KindRead): candidates whose
// IndexLag exceeds maxLag are left out before base chooses, unless that
// would leave none. Other kinds of requests go to base unchanged. A plain
// read is served from the member's own store, so a member that has fallen
// behind (partitioned, or catching up after a restart) answers with old
// data; writes and quorum reads go through raft and are not affected.
func AvoidStale(base Selector, maxLag uint64) Selector {
	if base == nil {
		base = Sticky()
	}
	return &avoidStale{base: base, maxLag: maxLag}
}

type avoidStale struct {
	base   Selector
	maxLag uint64
}

// candPool holds the filtered candidate lists of AvoidStale.
var candPool = sync.Pool{New: func() any { s := make([]Endpoint, 0, 16); return &s }}

func (a *avoidStale) Select(info RequestInfo, candidates []Endpoint) int {
	if info.Kind != KindRead {
		return a.base.Select(info, candidates)
	}
	fresh := 0
	for i := range candidates {
		if candidates[i].IndexLag <= a.maxLag {
			fresh++
		}
	}
	if fresh == 0 || fresh == len(candidates) {
		return a.base.Select(info, candidates)
	}
	bp := candPool.Get().(*[]Endpoint)
	f := (*bp)[:0]
	for i := range candidates {
		if candidates[i].IndexLag <= a.maxLag {
			f = append(f, candidates[i])
		}
	}
	pick := a.base.Select(info, f)
	if pick < 0 || pick >= len(f) {
		pick = 0
	}
	idx := f[pick].Index
	clear(f)
	*bp = f[:0]
	candPool.Put(bp)
	for i := range candidates {
		if candidates[i].Index == idx {
			return i
		}
	}
	return 0
}

func (a *avoidStale) Observe(o Outcome) { observeInner(a.base, o) }

func (a *avoidStale) usesLeader() bool { return wantsLeader(a.base) }
