// Package retry holds the client's retry policy machinery: the budget that
// limits retries across requests, and the backoff between passes over the
// endpoints. The rule of which failure may be retried where lives with the
// request loop in the root package.
package retry

import (
	"sync"
	"sync/atomic"
)

// Max is the most retries a Budget saves up; a budget starts full, so that
// the requests in flight when a member fails can all fail over.
const Max = 100

// Budget is a token bucket of retries, kept in thousandths of a token:
// each request adds a share of a token, time adds tokens at a rate, and
// each retry takes one. Requests only add to an atomic counter; the bucket
// is settled under a lock when a retry asks for a token, which is rare
// when the cluster is healthy. It is safe for concurrent use.
type Budget struct {
	disabled bool
	perReq   int64 // milli-tokens per request
	perSec   int64 // milli-tokens per second
	pending  atomic.Int64
	denied   atomic.Uint64

	mu      sync.Mutex
	balance int64
	last    int64 // clock time of the last refill
}

// NewBudget returns a full budget that gains ratio of a token per request
// and perSecond tokens a second (both positive), at clock time now. A
// disabled budget allows every retry.
func NewBudget(ratio, perSecond float64, disabled bool, now int64) *Budget {
	// A rate beyond what fills the bucket at once is the same as that
	// rate, and is kept there so that the arithmetic cannot overflow.
	const full = Max * 1000
	return &Budget{
		disabled: disabled,
		perReq:   int64(min(ratio*1000, full)),
		perSec:   int64(min(perSecond*1000, full*1e9)),
		balance:  full,
		last:     now,
	}
}

// Deposit counts one request.
func (b *Budget) Deposit() {
	if !b.disabled {
		b.pending.Add(1)
	}
}

// Withdraw takes a token for one retry at clock time now, reporting false
// when there is none.
func (b *Budget) Withdraw(now int64) bool {
	if b.disabled {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.balance += b.pending.Swap(0) * b.perReq
	b.balance = min(b.balance, Max*1000)
	if dt := now - b.last; dt > 0 {
		// In floating point: dt × perSec overflows an int64 for a
		// large rate.
		refill := float64(dt) * float64(b.perSec) / 1e9
		b.balance = int64(min(float64(b.balance)+refill, Max*1000))
		b.last = now
	}
	if b.balance < 1000 {
		b.denied.Add(1)
		return false
	}
	b.balance -= 1000
	return true
}

// Denied returns how many retries Withdraw refused.
func (b *Budget) Denied() uint64 { return b.denied.Load() }

// Rates returns what a request and a second add, in thousandths of a
// token.
func (b *Budget) Rates() (perRequest, perSecond int64) { return b.perReq, b.perSec }
