package v3adapter_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/v3adapter"
)

type regInput struct {
	op        string // "get", "set", "cas", "create", "delete"
	prev, val string
}

type regOutput struct {
	ok      bool   // the write applied / the get found the key
	value   string // get
	unknown bool   // no answer: the write may or may not have applied
}

// regModel is a register that may be missing ("" and !present).
type regState struct {
	present bool
	value   string
}

var regModel = porcupine.Model{
	Init: func() interface{} { return regState{} },
	Step: func(st, in, out interface{}) (bool, interface{}) {
		s, i, o := st.(regState), in.(regInput), out.(regOutput)
		var applies bool
		next := s
		switch i.op {
		case "get":
			return o.ok == s.present && (!s.present || o.value == s.value), s
		case "set":
			applies, next = true, regState{true, i.val}
		case "cas":
			applies = s.present && s.value == i.prev
			next = regState{true, i.val}
		case "create":
			applies = !s.present
			next = regState{true, i.val}
		case "delete":
			applies = s.present
			next = regState{}
		}
		if o.unknown {
			if applies {
				return true, next
			}
			return true, s
		}
		if o.ok != applies {
			return false, s
		}
		if applies {
			return true, next
		}
		return true, s
	},
	DescribeOperation: func(in, out interface{}) string {
		return fmt.Sprintf("%v -> %v", in, out)
	},
}

// TestLinearizable checks with porcupine that Get, Set, compare-and-swap,
// Create and Delete of one key through the adapter, from clients pinned to
// different members of a 3-member etcd 3.7 cluster, form a linearizable
// history.
func TestLinearizable(t *testing.T) {
	t.Parallel()
	c := testbed.NewCluster(t, testbed.Options{Size: 3, Version: "3.7"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const clients, opsPer = 3, 80
	start := time.Now()
	var mu sync.Mutex
	var hist []porcupine.Operation
	var wg sync.WaitGroup
	for ci, m := range c.Members()[:clients] {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		require.NoError(t, err)
		defer cli.Close()
		k := v3adapter.NewKeysAPI(cli)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(ci)))
			for i := 0; i < opsPer; i++ {
				val := fmt.Sprintf("c%d-%d", ci, i)
				prev := fmt.Sprintf("c%d-%d", rnd.Intn(clients), rnd.Intn(i+1))
				in := regInput{val: val, prev: prev}
				call := time.Since(start).Nanoseconds()
				var out regOutput
				var err error
				switch r := rnd.Intn(10); {
				case r < 4:
					in.op = "get"
					var resp *client.Response
					resp, err = k.Get(ctx, "/reg", nil)
					if err == nil {
						out = regOutput{ok: true, value: resp.Node.Value}
					}
				case r < 6:
					in.op = "set"
					_, err = k.Set(ctx, "/reg", val, nil)
				case r < 8:
					in.op = "cas"
					_, err = k.Set(ctx, "/reg", val, &client.SetOptions{PrevValue: prev})
				case r < 9:
					in.op = "create"
					_, err = k.Create(ctx, "/reg", val)
				default:
					in.op = "delete"
					_, err = k.Delete(ctx, "/reg", nil)
				}
				ret := time.Since(start).Nanoseconds()
				var ce client.Error
				switch {
				case err == nil:
					out.ok = true
				case errors.As(err, &ce):
					out.ok = false // 100, 101, 105: did not apply
				case in.op == "get":
					continue // a failed read says nothing
				default:
					out.unknown, ret = true, math.MaxInt64
				}
				mu.Lock()
				hist = append(hist, porcupine.Operation{ClientId: ci, Input: in, Output: out, Call: call, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.GreaterOrEqual(t, len(hist), clients*opsPer/2)
	res, _ := porcupine.CheckOperationsVerbose(regModel, hist, time.Minute)
	require.Equal(t, porcupine.Ok, res, "history of %d operations is not linearizable", len(hist))
}
