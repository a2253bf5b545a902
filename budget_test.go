package client

import (
	"math"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/retry"
	"github.com/stretchr/testify/require"
)

// TestRetryBudgetLargeRatesDoNotOverflow: a large PerSecond or Ratio means
// a bucket that refills at once, never one that denies retries.
func TestRetryBudgetLargeRatesDoNotOverflow(t *testing.T) {
	for _, cfg := range []RetryBudget{
		{PerSecond: 1e7},
		{PerSecond: 1e12},
		{PerSecond: math.MaxFloat64},
		{PerSecond: math.Inf(1)},
		{Ratio: 1e18},
	} {
		now := int64(1e12)
		b := newRetryBudget(cfg, now)
		for i := 0; i < 5*retry.Max; i++ {
			b.Deposit()
			now += int64(time.Second)
			require.True(t, b.Withdraw(now), "%+v: retry %d denied", cfg, i)
		}
	}
	b := newRetryBudget(RetryBudget{Ratio: math.NaN(), PerSecond: math.NaN()}, 0)
	_, want := newRetryBudget(RetryBudget{}, 0).Rates()
	_, got := b.Rates()
	require.Equal(t, want, got, "NaN means the default")
}
