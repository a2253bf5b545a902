package recipes_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
)

// lockOp is a Lock or an Unlock by one contender, with wall-clock call and
// return times (one host, so comparable across processes).
type lockOp struct {
	id        int
	acquire   bool
	call, ret int64
	lost      bool // Unlock reported the lock already lost
}

// lockModel: the lock is free (0) or held by one contender id.
var lockModel = porcupine.Model{
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in := input.(lockOp)
		h := state.(int)
		if in.acquire {
			return h == 0, in.id
		}
		return h == in.id, 0
	},
	DescribeOperation: func(input, output any) string {
		in := input.(lockOp)
		if in.acquire {
			return fmt.Sprintf("lock(%d)", in.id)
		}
		return fmt.Sprintf("unlock(%d)", in.id)
	},
}

// checkLockLinearizable checks the contenders' Lock/Unlock history in real
// time against a lock: no two contenders between their Lock's return and
// their Unlock's call at once. A history in which a lock was lost (the
// session ended while held, which a lease lock allows) is not a plain lock
// history and is only reported.
func checkLockLinearizable(t *testing.T, ops []lockOp) {
	t.Helper()
	hist := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		if op.lost {
			t.Logf("a lock was lost (session ended while held): real-time linearizability not checked")
			return
		}
		hist = append(hist, porcupine.Operation{ClientId: op.id % 100, Input: op, Call: op.call, Return: op.ret})
	}
	res := porcupine.CheckOperationsTimeout(lockModel, hist, time.Minute)
	require.NotEqual(t, porcupine.Illegal, res, "the Lock/Unlock history is not linearizable")
	t.Logf("lock history of %d operations: %s", len(hist), res)
}

// fencedIn and fencedOut are the operations on a fenced register.
type fencedIn struct {
	set   bool
	token uint64
	value string
}

type fencedOut struct {
	result string // set: "ok", "stale" or "unknown"; get: "read"
	token  uint64
	value  string
}

type fencedState struct {
	token uint64
	value string
}

// fencedModel is a register that keeps the highest token applied: a set
// with a lower token is refused. A set whose outcome is unknown may or may
// not have taken effect.
var fencedModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{fencedState{}} },
	Step: func(state, input, output any) []any {
		s := state.(fencedState)
		in := input.(fencedIn)
		out := output.(fencedOut)
		if !in.set {
			if out.token == s.token && out.value == s.value {
				return []any{s}
			}
			return nil
		}
		applied := fencedState{in.token, in.value}
		switch out.result {
		case "ok":
			if in.token >= s.token {
				return []any{applied}
			}
		case "stale":
			if in.token < s.token {
				return []any{s}
			}
		case "unknown":
			if in.token >= s.token {
				return []any{s, applied}
			}
			return []any{s}
		}
		return nil
	},
}

// TestFencedSetLinearizable: six writers race FencedSet with tokens drawn
// from a rising range (so lower tokens keep arriving late) and quorum reads,
// while the etcd leader is killed and restarted; the history is checked
// against a fenced register with porcupine. The checker itself is shown to
// reject a history where a lower token overwrote a higher one.
func TestFencedSetLinearizable(t *testing.T) {
	t.Parallel()
	bad := []porcupine.Operation{
		{ClientId: 0, Input: fencedIn{set: true, token: 5, value: "a"}, Call: 0, Output: fencedOut{result: "ok"}, Return: 1},
		{ClientId: 1, Input: fencedIn{set: true, token: 3, value: "b"}, Call: 2, Output: fencedOut{result: "ok"}, Return: 3},
	}
	require.Equal(t, porcupine.Illegal, porcupine.CheckOperationsTimeout(fencedModel.ToModel(), bad, 10*time.Second))

	c := newCluster(t, testbed.Options{Size: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	var hist []porcupine.Operation
	var wg sync.WaitGroup
	var base struct {
		sync.Mutex
		v uint64
	}
	for w := 0; w < 6; w++ {
		k, _ := newClient(t, c.ClientURLs())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				var in fencedIn
				var out fencedOut
				call := time.Since(start).Nanoseconds()
				if rand.IntN(3) == 0 {
					octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
					r, err := k.Get(octx, "/fenced/res", quorumGet)
					ocancel()
					if err != nil {
						if errCodeIs(err, 100) {
							out = fencedOut{result: "read"}
						} else {
							continue // a failed read says nothing
						}
					} else {
						var f struct {
							Token uint64 `json:"token"`
							Value string `json:"value"`
						}
						require.NoError(t, json.Unmarshal([]byte(r.Node.Value), &f))
						out = fencedOut{result: "read", token: f.Token, value: f.Value}
					}
				} else {
					base.Lock()
					base.v++
					tok := base.v/4 + uint64(rand.IntN(3))
					base.Unlock()
					in = fencedIn{set: true, token: tok, value: fmt.Sprintf("w%d-%d", w, i)}
					octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
					_, err := concurrency.FencedSet(octx, k, "/fenced/res", in.value, in.token)
					ocancel()
					switch {
					case err == nil:
						out.result = "ok"
					case errors.Is(err, concurrency.ErrStaleToken):
						out.result = "stale"
					default:
						out.result = "unknown"
					}
				}
				ret := time.Since(start).Nanoseconds()
				if out.result == "unknown" {
					ret = 1 << 62 // it may take effect at any later time
				}
				mu.Lock()
				hist = append(hist, porcupine.Operation{ClientId: w, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second) // lets the race run before the fault; not a synchronisation
	l, err := c.Leader(ctx)
	require.NoError(t, err)
	l.Kill(t)
	l.Restart(t)
	wg.Wait()
	stale := 0
	for _, op := range hist {
		if op.Output.(fencedOut).result == "stale" {
			stale++
		}
	}
	require.Positive(t, stale, "no lower token was ever refused: the race did not happen")
	res := porcupine.CheckOperationsTimeout(fencedModel.ToModel(), hist, time.Minute)
	require.NotEqual(t, porcupine.Illegal, res, "FencedSet history is not linearizable")
	t.Logf("%d operations (%d refused as stale): %s", len(hist), stale, res)
}
