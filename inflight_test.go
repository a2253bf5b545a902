package client

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// visited returns how many times each attempt of the set is visited.
func visited(f *inflightSet) map[*attemptState]int {
	seen := map[*attemptState]int{}
	f.each(func(st *attemptState) bool {
		seen[st]++
		return true
	})
	return seen
}

func inflightSlots(f *inflightSet) int {
	t := f.tab.Load()
	if t == nil {
		return 0
	}
	return t.slots()
}

// TestInflightSetHoldsEveryAttempt: attempts added and removed by many
// goroutines at once, the set growing meanwhile, are each visited exactly
// once while they are in it and not after they left it; the set grows to
// hold them, to no more than four slots for each.
func TestInflightSetHoldsEveryAttempt(t *testing.T) {
	var f inflightSet
	const workers, perWorker = 8, 250
	held := make([][]*attemptState, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				// Each keeps every other attempt it adds: churn and growth.
				st := &attemptState{}
				f.add(st)
				if i%2 == 0 {
					removeInflight(st)
					continue
				}
				held[w] = append(held[w], st)
			}
		}()
	}
	wg.Wait()

	seen := visited(&f)
	n := 0
	for _, sts := range held {
		for _, st := range sts {
			require.Equal(t, 1, seen[st], "an attempt in the set is visited once")
			n++
		}
	}
	require.Len(t, seen, n, "only the attempts in the set are visited")
	require.GreaterOrEqual(t, inflightSlots(&f), n)
	require.LessOrEqual(t, inflightSlots(&f), 4*(n+workers), "the set grew past four slots for each attempt it held")

	for _, sts := range held {
		for _, st := range sts {
			removeInflight(st)
		}
	}
	require.Empty(t, visited(&f), "removed attempts are visited")

	// Freed slots are taken again: the set does not grow for as many.
	slots := inflightSlots(&f)
	for range 10 * n {
		st := &attemptState{}
		f.add(st)
		removeInflight(st)
	}
	require.Equal(t, slots, inflightSlots(&f), "the set grew while never more than one attempt was in it")
}

// TestInflightSetSettles: under a steady load (a hundred attempts in the
// set while many more come and go, from several goroutines) the set stops
// growing at four slots for each attempt or fewer; it must not creep
// upward with the number of adds.
func TestInflightSetSettles(t *testing.T) {
	var f inflightSet
	const workers, held, churn = 4, 25, 50_000
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ring := make([]*attemptState, held)
			for i := range ring {
				ring[i] = &attemptState{}
				f.add(ring[i])
			}
			for i := range churn {
				k := i % held
				removeInflight(ring[k])
				ring[k] = &attemptState{}
				f.add(ring[k])
			}
			for _, st := range ring {
				removeInflight(st)
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, inflightSlots(&f), 4*workers*held, "the set kept growing under a steady load")
	require.Empty(t, visited(&f))
}

// TestInflightSetMissesNoAttemptAtClose is the order Close relies on: an
// attempt added as Close runs either finds the closed flag set after its
// add, or is cancelled by Close's walk of the set. None may do neither.
// Close comes after a random number of adds, while the set grows.
func TestInflightSetMissesNoAttemptAtClose(t *testing.T) {
	const adders, perAdder = 4, 50
	for round := range 200 {
		var f inflightSet
		var closed atomic.Bool
		var adds atomic.Int64
		at := int64(rand.IntN(adders * perAdder))
		reached := make(chan struct{})
		unseen := make([][]*atomic.Bool, adders)
		var wg sync.WaitGroup
		for a := range adders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perAdder {
					st := &attemptState{}
					cancelled := new(atomic.Bool)
					st.cancel = func(error) { cancelled.Store(true) }
					f.add(st)
					if adds.Add(1) == at+1 {
						close(reached)
					}
					if closed.Load() {
						return // it would cancel itself
					}
					unseen[a] = append(unseen[a], cancelled)
				}
			}()
		}
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Fatal("the adders did not reach Close's moment")
		}
		closed.Store(true)
		f.cancelAll(ErrClosed)
		wg.Wait()
		for a := range unseen {
			for i, cancelled := range unseen[a] {
				require.True(t, cancelled.Load(), "round %d: adder %d's attempt %d missed both the closed flag and Close's walk", round, a, i)
			}
		}
	}
}
