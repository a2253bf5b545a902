package client

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Defaults of RetryBudget.
const (
	// DefaultRetryRatio is the share of requests that may be retried.
	DefaultRetryRatio = 0.2
	// DefaultRetriesPerSecond is the retries allowed each second whatever
	// the request rate.
	DefaultRetriesPerSecond = 10
	// retryBudgetMax is the most retries the budget saves up; the budget
	// starts full, so that the requests in flight when a member fails can
	// all fail over.
	retryBudgetMax = 100
)

// ErrRetryBudgetExhausted is recorded in the *ClusterError of a request
// that was not retried because the client's retry budget was spent.
var ErrRetryBudgetExhausted = errors.New("client: retry budget exhausted")

// RetryBudget limits the attempts after the first of each request, so
// that an outage does not multiply the load on the cluster. It is a token
// bucket: each request adds Ratio of a token, time adds PerSecond tokens a
// second, and each retry takes one; the bucket holds at most 100 tokens
// and starts full. A retry after a connection that could not be made to an
// endpoint that was not ejected is free: it cost the server nothing, and
// the endpoint is ejected at once, so it happens only to the requests in
// flight when a member dies. Its zero value means the defaults.
type RetryBudget struct {
	// Ratio is the share of requests that may be retried. Zero means
	// DefaultRetryRatio.
	Ratio float64
	// PerSecond is the number of retries allowed each second whatever the
	// request rate. Zero means DefaultRetriesPerSecond.
	PerSecond float64
	// Disabled turns the budget off: every request may use all its rounds.
	Disabled bool
}

// retryBudget is the token bucket, in thousandths of a token. Requests
// only add to an atomic counter; the bucket is settled under mu when a
// retry asks for a token, which is rare when the cluster is healthy.
type retryBudget struct {
	disabled bool
	perReq   int64 // milli-tokens per request
	perSec   int64 // milli-tokens per second
	pending  atomic.Int64
	denied   atomic.Uint64

	mu      sync.Mutex
	balance int64
	last    int64 // clock time of the last refill
}

func newRetryBudget(cfg RetryBudget, now int64) *retryBudget {
	ratio, perSec := cfg.Ratio, cfg.PerSecond
	if !(ratio > 0) { // NaN too
		ratio = DefaultRetryRatio
	}
	if !(perSec > 0) {
		perSec = DefaultRetriesPerSecond
	}
	// A rate beyond what fills the bucket at once is the same as that
	// rate, and is kept there so that the arithmetic cannot overflow.
	const full = retryBudgetMax * 1000
	return &retryBudget{
		disabled: cfg.Disabled,
		perReq:   int64(min(ratio*1000, full)),
		perSec:   int64(min(perSec*1000, full*1e9)),
		balance:  retryBudgetMax * 1000,
		last:     now,
	}
}

// deposit counts one request.
func (b *retryBudget) deposit() {
	if !b.disabled {
		b.pending.Add(1)
	}
}

// withdraw takes a token for one retry, reporting false when there is none.
func (b *retryBudget) withdraw(now int64) bool {
	if b.disabled {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.balance += b.pending.Swap(0) * b.perReq
	b.balance = min(b.balance, retryBudgetMax*1000)
	if dt := now - b.last; dt > 0 {
		// In floating point: dt × perSec overflows an int64 for a
		// large PerSecond.
		refill := float64(dt) * float64(b.perSec) / 1e9
		b.balance = int64(min(float64(b.balance)+refill, retryBudgetMax*1000))
		b.last = now
	}
	if b.balance < 1000 {
		b.denied.Add(1)
		return false
	}
	b.balance -= 1000
	return true
}
