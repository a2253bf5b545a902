package client

// PreferLeader returns a policy that sends every request to the raft
// leader's endpoint when the client knows it, it is a candidate and it has
// a leader, and otherwise asks fallback (Sticky when nil). Writes reach
// the leader without the follower's forwarding hop. The client learns the
// leader from Sync and refreshes it in the background when a response
// shows that a new raft term has begun.
func PreferLeader(fallback Selector) Selector {
	if fallback == nil {
		fallback = Sticky()
	}
	return &preferLeader{fallback: fallback}
}

type preferLeader struct {
	fallback Selector
}

func (p *preferLeader) Select(info RequestInfo, candidates []Endpoint) int {
	for i := range candidates {
		if candidates[i].Leader && candidates[i].HasLeader {
			return i
		}
	}
	return p.fallback.Select(info, candidates)
}

func (p *preferLeader) Observe(o Outcome) { observeInner(p.fallback, o) }

func (p *preferLeader) usesLeader() bool { return true }
