package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytedance/sonic"
	goccy "github.com/goccy/go-json"

	client "github.com/etcdv2/client"
	"github.com/etcdv2/client/internal/v2fake"
)

// jsonLib is a JSON library that decodes a whole body into a
// client.Response, the type the client's own decoder fills.
type jsonLib struct {
	name      string
	unmarshal func(data []byte, r *client.Response) error
}

// jsonLibs are the libraries compared with the client's decoder:
// encoding/json (the reference), goccy/go-json and sonic (its
// encoding/json-compatible configuration). encoding/json/v2 is added by
// decodelib_jsonv2_test.go when built with GOEXPERIMENT=jsonv2.
var jsonLibs = []jsonLib{
	{"encoding-json", func(d []byte, r *client.Response) error { return json.Unmarshal(d, r) }},
	{"goccy-go-json", func(d []byte, r *client.Response) error { return goccy.Unmarshal(d, r) }},
	{"sonic", func(d []byte, r *client.Response) error { return sonic.ConfigStd.Unmarshal(d, r) }},
}

// Body names of the decoding comparison.
const (
	bodyGet  = "get"
	body10k  = "list10k"
	body100k = "list100k"
)

// listingBody is a recursive listing of n keys as etcd writes it: n/100
// directories of 100 keys each; the values are small JSON documents (a
// dozen escaped quotes each, as configuration stores hold) and one key in
// ten has a TTL and an expiration.
func listingBody(n int) []byte {
	exp := time.Date(2026, 11, 30, 1, 2, 3, 456789000, time.UTC)
	ix := 10
	next := func() int { ix++; return ix }
	var dirs []*v2fake.Node
	for d := 0; d < (n+99)/100; d++ {
		dk := fmt.Sprintf("/list/d%04d", d)
		var kids []*v2fake.Node
		for k := 0; k < 100 && d*100+k < n; k++ {
			i := uint64(next())
			v := fmt.Sprintf(`{"host":"10.0.%d.%d","port":%d,"weight":%d,"tags":["a","b"]}`, d%256, k, 2000+k, k%7)
			kid := &v2fake.Node{Key: fmt.Sprintf("%s/k%03d", dk, k), Value: &v, ModifiedIndex: i, CreatedIndex: i}
			if k%10 == 0 {
				kid.TTL = int64(60 + k)
				kid.Expiration = &exp
			}
			kids = append(kids, kid)
		}
		i := uint64(next())
		dirs = append(dirs, &v2fake.Node{Key: dk, Dir: true, Nodes: kids, ModifiedIndex: i, CreatedIndex: i})
	}
	return etcdBody(v2fake.Event{Action: "get", Node: &v2fake.Node{Key: "/list", Dir: true, Nodes: dirs, ModifiedIndex: 7, CreatedIndex: 7}})
}

// decodeBodies are the bodies of the comparison, by name, made once; the
// key path each is served at is "/v2/keys/" + name.
var decodeBodies = sync.OnceValue(func() map[string][]byte {
	get := []byte(`{"action":"get","node":{"key":"/get","value":"0123456789abcdef0123456789abcdef","modifiedIndex":42,"createdIndex":42}}` + "\n")
	return map[string][]byte{bodyGet: get, body10k: listingBody(10_000), body100k: listingBody(100_000)}
})

// memTransport answers every request from memory, without a network: a
// key's GET with the body of the key's name and the headers etcd sends,
// /version as etcd 3.5 does (the client asks for it when an answer is
// slow), anything else with etcd's key-not-found error. It
// lets the client's decoder be measured on the same bytes as a library's
// without loopback TCP in between.
type memTransport struct{ bodies map[string][]byte }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	ok := true
	switch name, isKey := strings.CutPrefix(r.URL.Path, "/v2/keys/"); {
	case isKey:
		body, ok = m.bodies[name]
	case r.URL.Path == "/version":
		// The client's liveness check of a slow answer.
		body = []byte(`{"etcdserver":"3.5.35","etcdcluster":"3.5.0"}`)
	default:
		ok = false
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Cluster-Id", "cdf818194e3a8c32")
	h.Set("X-Etcd-Index", "10007")
	h.Set("X-Raft-Index", "20010")
	h.Set("X-Raft-Term", "2")
	code := http.StatusOK
	if !ok {
		code = http.StatusNotFound
		body = []byte(`{"errorCode":100,"message":"Key not found","cause":"/x","index":10007}` + "\n")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{StatusCode: code, Status: http.StatusText(code), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// CancelRequest makes memTransport a client.CancelableTransport.
func (memTransport) CancelRequest(*http.Request) {}

// BenchmarkDecodeLibs decodes the same bodies with the client (a Get
// through its whole request path, over a transport that answers from
// memory) and with each library (a GET with net/http over the same
// transport, the body read whole and unmarshalled into client.Response).
// Both paths include one HTTP round trip over memory; "mem" rows are the
// library's Unmarshal alone, from bytes already in memory.
func BenchmarkDecodeLibs(b *testing.B) {
	bodies := decodeBodies()
	names := []string{bodyGet, body10k}
	if os.Getenv("ETCDV2_BENCH_SCALE") != "" {
		names = append(names, body100k)
	}
	tr := memTransport{bodies: bodies}
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}, Transport: tr})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	kapi := client.NewKeysAPI(c)
	hc := &http.Client{Transport: tr}
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			b.Run("ours", func(b *testing.B) {
				b.SetBytes(int64(len(bodies[name])))
				sequential(b, func(ctx context.Context) error {
					_, err := kapi.Get(ctx, "/"+name, &client.GetOptions{Recursive: name != bodyGet})
					return err
				})
			})
			for _, lib := range jsonLibs {
				b.Run(lib.name, func(b *testing.B) {
					b.SetBytes(int64(len(bodies[name])))
					sequential(b, func(ctx context.Context) error {
						req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:2379/v2/keys/"+name, nil)
						if err != nil {
							return err
						}
						resp, err := hc.Do(req)
						if err != nil {
							return err
						}
						defer resp.Body.Close()
						data, err := io.ReadAll(resp.Body)
						if err != nil {
							return err
						}
						var r client.Response
						return lib.unmarshal(data, &r)
					})
				})
				b.Run(lib.name+"-mem", func(b *testing.B) {
					b.SetBytes(int64(len(bodies[name])))
					sequential(b, func(context.Context) error {
						var r client.Response
						return lib.unmarshal(bodies[name], &r)
					})
				})
			}
		})
	}
}

// decodeOps returns, for body name, the client's Get and each library's
// GET-and-unmarshal over the in-memory transport, by contender name.
func decodeOps(tb testing.TB, name string) (names []string, ops []func(context.Context) error, closeAll func()) {
	tb.Helper()
	bodies := decodeBodies()
	tr := memTransport{bodies: bodies}
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}, Transport: tr})
	if err != nil {
		tb.Fatal(err)
	}
	kapi := client.NewKeysAPI(c)
	hc := &http.Client{Transport: tr}
	names = append(names, "ours")
	ops = append(ops, func(ctx context.Context) error {
		_, err := kapi.Get(ctx, "/"+name, &client.GetOptions{Recursive: name != bodyGet})
		return err
	})
	for _, lib := range jsonLibs {
		names = append(names, lib.name)
		ops = append(ops, func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:2379/v2/keys/"+name, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			var r client.Response
			return lib.unmarshal(data, &r)
		})
	}
	return names, ops, func() { _ = c.Close() }
}

// BenchmarkDecodeInterleaved runs the contenders of BenchmarkDecodeLibs in
// turn within one benchmark: each iteration decodes the body once with
// every contender, starting with a different one each time, and times each
// call, so that a change of load on the machine falls on all of them
// alike. It reports each contender's median as p50-ns@<contender> and its
// ratio to ours as x-ours@<contender>; ns/op is the sum over them.
func BenchmarkDecodeInterleaved(b *testing.B) {
	names := []string{bodyGet, body10k}
	if os.Getenv("ETCDV2_BENCH_SCALE") != "" {
		names = append(names, body100k)
	}
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			who, ops, closeAll := decodeOps(b, name)
			defer closeAll()
			ctx := context.Background()
			for _, op := range ops {
				if err := op(ctx); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([][]time.Duration, len(ops))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range ops {
					k := (i + j) % len(ops)
					t0 := time.Now()
					if err := ops[k](ctx); err != nil {
						b.Fatal(err)
					}
					lat[k] = append(lat[k], time.Since(t0))
				}
			}
			b.StopTimer()
			for k := range lat {
				slices.Sort(lat[k])
			}
			ours := float64(percentile(lat[0], 50))
			for k, n := range who {
				p50 := float64(percentile(lat[k], 50))
				b.ReportMetric(p50, "p50-ns@"+n)
				if k > 0 {
					b.ReportMetric(p50/ours, "x-ours@"+n)
				}
			}
		})
	}
}

// TestDecodeLibsAgree checks that the client and every library decode the
// comparison's bodies to the same Response as encoding/json.
func TestDecodeLibsAgree(t *testing.T) {
	bodies := decodeBodies()
	tr := memTransport{bodies: bodies}
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{bodyGet, body10k} {
		var want client.Response
		if err := json.Unmarshal(bodies[name], &want); err != nil {
			t.Fatal(err)
		}
		got, err := client.NewKeysAPI(c).Get(context.Background(), "/"+name, &client.GetOptions{Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(want.Node, got.Node) || got.Action != want.Action {
			t.Errorf("%s: ours differs from encoding/json", name)
		}
		for _, lib := range jsonLibs {
			var r client.Response
			if err := lib.unmarshal(bodies[name], &r); err != nil {
				t.Errorf("%s %s: %v", name, lib.name, err)
				continue
			}
			if !reflect.DeepEqual(want, r) {
				t.Errorf("%s: %s differs from encoding/json", name, lib.name)
			}
		}
	}
}

// equivalenceSeeds are the fuzz seeds of the library checks: etcd bodies
// and inputs where JSON decoders are known to part ways (case-insensitive
// and duplicate names, invalid UTF-8, escapes, numbers at the limits,
// nulls, wrong types, trailing data).
var equivalenceSeeds = []string{
	`{"action":"get","node":{"key":"/a","value":"x","modifiedIndex":4,"createdIndex":4}}`,
	`{"action":"set","node":{"key":"/a","value":"1","modifiedIndex":6,"createdIndex":6},"prevNode":{"key":"/a","value":"0","modifiedIndex":5,"createdIndex":5}}`,
	`{"action":"get","node":{"key":"/d","dir":true,"nodes":[{"key":"/d/a","value":"\"q\"\u00e9\ud83d\ude00","ttl":5,"expiration":"2026-11-30T01:02:03.456Z","modifiedIndex":8,"createdIndex":8}],"modifiedIndex":7,"createdIndex":7}}`,
	`{"ACTION":"get","Node":{"KEY":"/a","Value":"v"}}`,
	`{"action":"get","action":"set","node":{"key":"/a","key":"/b"}}`,
	"{\"action\":\"g\xffet\",\"node\":{\"key\":\"/\xc3\"}}",
	`{"action":"get","node":{"key":"/a","modifiedIndex":18446744073709551615,"ttl":-9223372036854775808}}`,
	`{"action":"get","node":{"key":"/a","modifiedIndex":18446744073709551616}}`,
	`{"action":"get","node":{"key":"/a","modifiedIndex":1e2,"ttl":1.0}}`,
	`{"action":"get","node":{"key":"/a","modifiedIndex":-0}}`,
	`{"action":null,"node":null,"prevNode":{"key":null,"nodes":null,"expiration":null}}`,
	`{"action":"get","node":{"key":"/a","dir":"true"}}`,
	`{"action":"get","node":{"key":"/a","expiration":"not a time"}}`,
	`{"action":"get","node":{"key":"/a","unknown":[1,{"x":null}],"value":"\u0000"}} x`,
	`{"action":"get","node":{"key":"/a","nodes":[null,{"key":"/a/b"}]}}`,
	` [1] `, `null`, ``, `{"action":"\ud800"}`, `{"action":"a\/b\b\f\n\r\t"}`,
}

// fuzzEquivalence runs the check of the client's own decoder for one
// library: on any input, the library and encoding/json either both fail
// or both succeed with deeply equal Responses.
func fuzzEquivalence(f *testing.F, lib jsonLib) {
	for _, s := range equivalenceSeeds {
		f.Add([]byte(s))
	}
	f.Add(decodeBodies()[bodyGet])
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got client.Response
		werr := json.Unmarshal(data, &want)
		gerr := lib.unmarshal(data, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("input %q: encoding/json error %v, %s error %v", data, werr, lib.name, gerr)
		}
		if werr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("input %q:\nencoding/json %+v\n%s %+v", data, dumpNodeTree(&want), lib.name, dumpNodeTree(&got))
		}
	})
}

func dumpNodeTree(r *client.Response) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// FuzzGoccyEquivalence: goccy/go-json against encoding/json.
func FuzzGoccyEquivalence(f *testing.F) { fuzzEquivalence(f, jsonLibs[1]) }

// FuzzSonicEquivalence: sonic (ConfigStd) against encoding/json.
func FuzzSonicEquivalence(f *testing.F) { fuzzEquivalence(f, jsonLibs[2]) }
