// Package conformance runs the same KeysAPI scenarios against several
// client.KeysAPI implementations (the native v2 client on a v2 server, the
// v3 adapter on v3 servers) and compares what they answer, with indexes made
// relative to each scenario's first write. Any KeysAPI-based test can use
// it: give Run one Target per implementation.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdv2/client"
)

// Target is one KeysAPI under test.
type Target struct {
	// Name labels the target in failures, like "v2@3.5" or "adapter@3.7".
	Name string
	// KAPI is the implementation.
	KAPI client.KeysAPI
}

// Scenario is one sequence of KeysAPI calls. Run gets a fresh directory
// (base) no other scenario uses, and records every answer with r.
type Scenario struct {
	Name string
	Run  func(ctx context.Context, k client.KeysAPI, base string, r *Recorder)
}

// Recorder keeps a scenario's transcript with indexes relative to its
// first write.
type Recorder struct {
	mu    sync.Mutex
	base  uint64
	lines []string
}

// Lines returns the transcript.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// Base returns the index of the scenario's first write (0 before it).
func (r *Recorder) Base() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base
}

func (r *Recorder) rel(i uint64) string {
	if i == 0 {
		return "0"
	}
	if i >= r.base {
		return "i+" + strconv.FormatUint(i-r.base, 10)
	}
	return "i-" + strconv.FormatUint(r.base-i, 10)
}

var (
	digits20 = regexp.MustCompile(`\d{20}`)
	numbers  = regexp.MustCompile(`\d+`)
)

func (r *Recorder) relKey(k string) string {
	return digits20.ReplaceAllStringFunc(k, func(s string) string {
		n, _ := strconv.ParseUint(s, 10, 64)
		return "<" + r.rel(n) + ">"
	})
}

func (r *Recorder) node(n *client.Node) string {
	if n == nil {
		return "nil"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "{%s", r.relKey(n.Key))
	if n.Dir {
		b.WriteString(" dir")
	} else {
		fmt.Fprintf(&b, " v=%q", n.Value)
	}
	fmt.Fprintf(&b, " c=%s m=%s", r.rel(n.CreatedIndex), r.rel(n.ModifiedIndex))
	if n.TTL != 0 {
		fmt.Fprintf(&b, " ttl=%d", n.TTL)
	}
	if n.Expiration != nil {
		b.WriteString(" exp")
	}
	if len(n.Nodes) > 0 {
		b.WriteString(" [")
		for i, c := range n.Nodes {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(r.node(c))
		}
		b.WriteString("]")
	}
	b.WriteString("}")
	return b.String()
}

// Record adds one call's outcome to the transcript and returns resp.
func (r *Recorder) Record(op string, resp *client.Response, err error) *client.Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && r.base == 0 && resp != nil && resp.Action != "get" {
		r.base = resp.Index
	}
	var line string
	var ce client.Error
	var ie *client.InvalidRequestError
	switch {
	case errors.As(err, &ce):
		cause := numbers.ReplaceAllStringFunc(ce.Cause, func(s string) string {
			n, _ := strconv.ParseUint(s, 10, 64)
			if r.base > 0 && n >= r.base {
				return r.rel(n)
			}
			return s
		})
		line = fmt.Sprintf("error %d %q %q index=%s", ce.Code, ce.Message, r.relKey(cause), r.rel(ce.Index))
	case errors.As(err, &ie):
		line = fmt.Sprintf("invalid %s %s", ie.Op, ie.Field)
	case err != nil:
		line = "error " + err.Error()
	default:
		line = fmt.Sprintf("%s node=%s prev=%s index=%s", resp.Action, r.node(resp.Node), r.node(resp.PrevNode), r.rel(resp.Index))
	}
	r.lines = append(r.lines, op+" -> "+line)
	return resp
}

// Rec returns a function that records op's outcome, to wrap a call:
// r.Rec("get")(k.Get(ctx, key, nil)).
func (r *Recorder) Rec(op string) func(*client.Response, error) *client.Response {
	return func(resp *client.Response, err error) *client.Response { return r.Record(op, resp, err) }
}

// Note adds a free-form line to the transcript.
func (r *Recorder) Note(s string) {
	r.mu.Lock()
	r.lines = append(r.lines, s)
	r.mu.Unlock()
}

// Run runs every scenario (Scenarios plus extra) against every target, the
// targets in parallel, and fails t for each transcript line that differs
// from the first target's. known maps "<scenario>/<line number>" to the
// reason of a documented difference, which is logged instead of failing.
func Run(t *testing.T, targets []Target, known map[string]string, extra ...Scenario) {
	t.Helper()
	scenarios := append(Scenarios(), extra...)
	out := make([][][]string, len(targets))
	var wg sync.WaitGroup
	for ti, tg := range targets {
		out[ti] = make([][]string, len(scenarios))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for si, sc := range scenarios {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				rec := &Recorder{}
				sc.Run(ctx, tg.KAPI, "/conformance/"+sc.Name, rec)
				cancel()
				out[ti][si] = rec.Lines()
			}
		}()
	}
	wg.Wait()
	for si, sc := range scenarios {
		ref := out[0][si]
		for ti := 1; ti < len(targets); ti++ {
			got := out[ti][si]
			for i := 0; i < len(ref) || i < len(got); i++ {
				var a, b string
				if i < len(ref) {
					a = ref[i]
				}
				if i < len(got) {
					b = got[i]
				}
				if a == b {
					continue
				}
				id := fmt.Sprintf("%s/%d", sc.Name, i)
				if why, ok := known[id]; ok {
					t.Logf("%s: %s: known difference (%s):\n  %s: %s\n  %s: %s", targets[ti].Name, id, why, targets[0].Name, a, targets[ti].Name, b)
					continue
				}
				t.Errorf("%s: %s differs:\n  %s: %s\n  %s: %s", targets[ti].Name, id, targets[0].Name, a, targets[ti].Name, b)
			}
		}
	}
}
