package health

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// EWMADecay is the time constant of PeakEWMA.
const EWMADecay = 10 * time.Second

// PeakEWMA is a latency average that rises at once to a higher sample and
// decays toward lower ones with time constant EWMADecay, weighting each
// sample by the time since the previous one. Read, it also decays toward
// zero while no sample comes, so that an endpoint avoided for being slow
// is tried again after a while. Its zero value is ready; it is safe for
// concurrent use.
type PeakEWMA struct {
	mu    sync.Mutex    // serializes writers
	cost  atomic.Uint64 // float64 nanoseconds
	stamp atomic.Int64  // clock time of the last sample
}

// Observe records a sample (nanoseconds) at clock time now.
func (p *PeakEWMA) Observe(now int64, sample float64) {
	p.mu.Lock()
	cur := math.Float64frombits(p.cost.Load())
	if sample > cur {
		cur = sample
	} else {
		dt := now - p.stamp.Load()
		if dt < 0 {
			dt = 0
		}
		w := decayWeight(float64(dt) / float64(EWMADecay))
		cur = cur*w + sample*(1-w)
	}
	p.cost.Store(math.Float64bits(cur))
	p.stamp.Store(now)
	p.mu.Unlock()
}

// decayWeight is exp(-x) for x ≥ 0, by a series when x is small (the
// common case of frequent samples; error below 2e-5).
func decayWeight(x float64) float64 {
	if x < 0.05 {
		return 1 - x + x*x/2
	}
	return math.Exp(-x)
}

// Value returns the average at clock time now; 0 while there is no
// sample, and at least 1 ns once there is one.
func (p *PeakEWMA) Value(now int64) time.Duration {
	cur := math.Float64frombits(p.cost.Load())
	if cur == 0 {
		return 0
	}
	// Skip the decay for recent samples: it is below 1% and costs an Exp.
	if dt := now - p.stamp.Load(); dt > int64(EWMADecay)/128 {
		cur *= math.Exp(-float64(dt) / float64(EWMADecay))
	}
	if cur < 1 {
		cur = 1 // known, however fast
	}
	return time.Duration(cur)
}
