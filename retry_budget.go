package client

import (
	"errors"

	"github.com/etcdv2/client/internal/retry"
)

// Defaults of RetryBudget.
const (
	// DefaultRetryRatio is the share of requests that may be retried.
	DefaultRetryRatio = 0.2
	// DefaultRetriesPerSecond is the retries allowed each second whatever
	// the request rate.
	DefaultRetriesPerSecond = 10
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

// newRetryBudget returns the budget of cfg at clock time now.
func newRetryBudget(cfg RetryBudget, now int64) *retry.Budget {
	ratio, perSec := cfg.Ratio, cfg.PerSecond
	if !(ratio > 0) { // NaN too
		ratio = DefaultRetryRatio
	}
	if !(perSec > 0) {
		perSec = DefaultRetriesPerSecond
	}
	return retry.NewBudget(ratio, perSec, cfg.Disabled, now)
}
