package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/v2fake"
)

// benchBodies returns a single-key answer and a recursive listing of
// 10,000 keys, as an etcd server writes them.
func benchBodies(tb testing.TB) (single, listing []byte) {
	single = []byte(etcdBodies[0])
	exp := time.Date(2026, 11, 21, 11, 27, 25, 414162477, time.UTC)
	root := &Node{Key: "/registry", Dir: true, CreatedIndex: 4, ModifiedIndex: 4}
	for d := 0; d < 100; d++ {
		dir := &Node{Key: fmt.Sprintf("/registry/dir%03d", d), Dir: true, CreatedIndex: uint64(5 + d), ModifiedIndex: uint64(5 + d)}
		for i := 0; i < 100; i++ {
			n := &Node{
				Key:           fmt.Sprintf("%s/key%05d", dir.Key, i),
				Value:         fmt.Sprintf(`{"name":"service-%d","port":%d,"tags":["a","b"]}`, i, 8000+i),
				CreatedIndex:  uint64(1000 + d*100 + i),
				ModifiedIndex: uint64(1000 + d*100 + i),
			}
			if i%10 == 0 {
				n.Expiration = &exp
				n.TTL = 30
			}
			dir.Nodes = append(dir.Nodes, n)
		}
		root.Nodes = append(root.Nodes, dir)
	}
	b, err := json.Marshal(Response{Action: "get", Node: root})
	if err != nil {
		tb.Fatal(err)
	}
	return single, b
}

// plainListing returns a recursive listing of 10,000 keys with 32-byte
// plain values and 6-digit indexes, in the order etcd writes a node's
// fields (key, value or dir, nodes, modifiedIndex, createdIndex): the
// listing of bench/ BenchmarkList.
func plainListing() []byte {
	var b bytes.Buffer
	b.WriteString(`{"action":"get","node":{"key":"/bench/list","dir":true,"nodes":[`)
	for i := 0; i < 10_000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		ix := 100_000 + 3*i
		fmt.Fprintf(&b, `{"key":"/bench/list/k%05d","value":"0123456789abcdef0123456789abcdef","modifiedIndex":%d,"createdIndex":%d}`, i, ix, ix)
	}
	b.WriteString(`],"modifiedIndex":99999,"createdIndex":99999}}` + "\n")
	return b.Bytes()
}

// reportCPU reports the CPU time of the process (all its threads: the
// garbage collector's, and the test server's over loopback) per operation
// since start: on a shared machine it is steadier than the wall time.
func reportCPU(b *testing.B, start int64) {
	if start != 0 {
		b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
	}
}

// benchDecoder is one way of decoding a body, to compare: the stream
// decoder (decodeJSON), encoding/json, and reading the body without
// decoding it. github.com/ugorji/go/codec, used before, was measured the
// same way: see docs/decoding.md.
type benchDecoder struct {
	name   string
	decode func(r io.Reader) error
}

var benchDecoders = []benchDecoder{
	{"stream", func(r io.Reader) error { var v Response; return decodeJSON(r, &v) }},
	{"encoding-json", func(r io.Reader) error { var v Response; return json.NewDecoder(r).Decode(&v) }},
	{"io-copy", func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }},
}

func BenchmarkDecodeMemory(b *testing.B) {
	single, listing := benchBodies(b)
	plain := plainListing()
	for _, body := range [][]byte{listing, plain} {
		if d, resp := (&streamDecoder{r: bytes.NewReader(body)}), new(Response); !d.response(resp) {
			b.Fatal("a listing is not decoded by the stream decoder itself: the fast path would not be measured")
		}
	}
	for _, body := range []struct {
		name string
		b    []byte
	}{{"single", single}, {"listing10k", listing}, {"plain10k", plain}} {
		for _, d := range benchDecoders {
			b.Run(body.name+"/"+d.name, func(b *testing.B) {
				b.SetBytes(int64(len(body.b)))
				b.ReportAllocs()
				cpu := processCPU()
				for i := 0; i < b.N; i++ {
					if err := d.decode(bytes.NewReader(body.b)); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
	}
}

func BenchmarkDecodeLoopback(b *testing.B) {
	single, listing := benchBodies(b)
	for _, body := range []struct {
		name string
		b    []byte
	}{{"single", single}, {"listing10k", listing}} {
		srv := v2fake.New(v2fake.Options{NoCounts: true})
		srv.On("*", v2fake.Func(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body.b)
		}))
		srv.Start()
		tr := &http.Transport{}
		hc := &http.Client{Transport: tr}
		for _, d := range benchDecoders {
			b.Run(body.name+"/"+d.name, func(b *testing.B) {
				b.SetBytes(int64(len(body.b)))
				b.ReportAllocs()
				cpu := processCPU()
				for i := 0; i < b.N; i++ {
					resp, err := hc.Get(srv.URL)
					if err != nil {
						b.Fatal(err)
					}
					if err := d.decode(resp.Body); err != nil {
						b.Fatal(err)
					}
					finishBody(resp.Body)
				}
				reportCPU(b, cpu)
			})
		}
		tr.CloseIdleConnections()
		srv.Close()
	}
}

// BenchmarkKeysListing is the whole client path of a large answer: a
// recursive KeysAPI.Get of a listing served by an in-process server over
// loopback, against reading the same bytes with net/http (raw). B/op over
// the body's size is the memory a listing costs. list10k is benchBodies'
// listing (values with escapes); list100k is 100,000 keys of 32-byte
// plain values.
func BenchmarkKeysListing(b *testing.B) {
	_, list10k := benchBodies(b)
	root := &Node{Key: "/registry", Dir: true, CreatedIndex: 4, ModifiedIndex: 4}
	for i := 0; i < 100_000; i++ {
		root.Nodes = append(root.Nodes, &Node{Key: fmt.Sprintf("/registry/k%07d", i), Value: fmt.Sprintf("%032d", i), CreatedIndex: uint64(1000 + i), ModifiedIndex: uint64(1000 + i)})
	}
	list100k, err := json.Marshal(Response{Action: "get", Node: root})
	if err != nil {
		b.Fatal(err)
	}
	for _, body := range []struct {
		name string
		b    []byte
	}{{"list10k", list10k}, {"list100k", list100k}} {
		b.Run(body.name, func(b *testing.B) { benchKeysListing(b, body.b) })
	}
}

func benchKeysListing(b *testing.B, listing []byte) {
	srv := v2fake.New(v2fake.Options{NoCounts: true})
	srv.On("*", v2fake.Func(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Etcd-Index", "1")
		w.Write(listing)
	}))
	srv.Start()
	defer srv.Close()
	b.Run("ours", func(b *testing.B) {
		c, err := New(Config{Endpoints: []string{srv.URL}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		k := NewKeysAPI(c)
		ctx := context.Background()
		b.SetBytes(int64(len(listing)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := k.Get(ctx, "/registry", &GetOptions{Recursive: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		b.SetBytes(int64(len(listing)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			resp, err := hc.Get(srv.URL + "/v2/keys/registry?recursive=true")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
}
