package v2fake

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func get(t *testing.T, s *Server, path string) (*http.Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+path, nil)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestRulesPrecedenceTimesAndCount(t *testing.T) {
	s := Start(t, Options{})
	s.Set("/k", "v")
	s.On("/v2/keys/*", Respond(503, `{"message":"first"}`))
	r := s.On("GET /v2/keys/k", Respond(500, `{"message":"second"}`)).Times(1)
	resp, body, err := get(t, s, "/v2/keys/k")
	if err != nil || resp.StatusCode != 500 || body != `{"message":"second"}` {
		t.Fatalf("the later rule: %v %q %v", resp.StatusCode, body, err)
	}
	if resp.Header.Get("X-Etcd-Cluster-Id") != "cdf818194e3a8c32" {
		t.Errorf("a v2 fault answer without the cluster ID: %v", resp.Header)
	}
	resp, body, _ = get(t, s, "/v2/keys/k")
	if resp.StatusCode != 503 || body != `{"message":"first"}` {
		t.Fatalf("a used-up rule still applies: %v %q", resp.StatusCode, body)
	}
	r.Remove()
	s.ClearRules()
	resp, body, _ = get(t, s, "/v2/keys/k")
	if resp.StatusCode != 200 || !strings.Contains(body, `"value":"v"`) {
		t.Fatalf("without rules: %v %q", resp.StatusCode, body)
	}
	get(t, s, "/version")
	if n := s.Count("/v2/keys*"); n != 3 {
		t.Errorf("Count(/v2/keys*) = %d, want 3", n)
	}
	if n := s.Count("GET *"); n != 4 {
		t.Errorf("Count(GET *) = %d, want 4", n)
	}
	s.SetClusterID("beef")
	resp, _, _ = get(t, s, "/v2/keys/k")
	if resp.Header.Get("X-Etcd-Cluster-Id") != "beef" {
		t.Errorf("cluster ID after SetClusterID: %q", resp.Header.Get("X-Etcd-Cluster-Id"))
	}
}

func TestDelayHangAndRelease(t *testing.T) {
	s := Start(t, Options{})
	s.On("/version", Delay(200*time.Millisecond)).Times(1)
	start := time.Now()
	if _, body, err := get(t, s, "/version"); err != nil || !strings.Contains(body, "etcdserver") {
		t.Fatalf("delayed: %q %v", body, err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("answered after %v, before the delay", d)
	}
	release := make(chan struct{})
	s.On("/version", HangUntil(release)).Times(1)
	done := make(chan string, 1)
	go func() {
		_, body, _ := get(t, s, "/version")
		done <- body
	}()
	select {
	case b := <-done:
		t.Fatalf("a hung request was answered: %q", b)
	case <-time.After(100 * time.Millisecond): // nothing may come while hung
	}
	close(release)
	if b := <-done; !strings.Contains(b, "etcdserver") {
		t.Errorf("released: %q", b)
	}

	s.On("/v2/keys/*", Hang())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v2/keys/a", nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestConnectionFaults(t *testing.T) {
	s := Start(t, Options{})
	s.Set("/k", "value")
	s.On("/v2/keys/drop", Drop())
	if _, _, err := get(t, s, "/v2/keys/drop"); err == nil {
		t.Error("Drop: an answer came")
	}
	s.On("/v2/keys/k", CloseAfterHeaders()).Times(1)
	resp, body, err := get(t, s, "/v2/keys/k")
	if err == nil || resp.StatusCode != 200 || body != "" || resp.Header.Get("X-Etcd-Index") == "" {
		t.Errorf("CloseAfterHeaders: %v %q %v", resp, body, err)
	}
	s.On("/v2/keys/k", CloseMidBody(20)).Times(1)
	resp, body, err = get(t, s, "/v2/keys/k")
	if err == nil || resp.StatusCode != 200 || body != `{"action":"get","nod` {
		t.Errorf("CloseMidBody: %q %v", body, err)
	}
	_, whole, err := get(t, s, "/v2/keys/k")
	if err != nil {
		t.Fatal(err)
	}
	s.On("/v2/keys/k", CloseMidSizedBody(20)).Times(1)
	resp, body, err = get(t, s, "/v2/keys/k")
	if !errors.Is(err, io.ErrUnexpectedEOF) || resp.StatusCode != 200 || resp.ContentLength != int64(len(whole)) || body != whole[:20] {
		t.Errorf("CloseMidSizedBody: %v %q %v", resp, body, err)
	}
	for _, sized := range []bool{false, true} {
		f := StallMidBody(20)
		if sized {
			f = StallMidSizedBody(20)
		}
		s.On("/v2/keys/k", f).Times(1)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v2/keys/k", nil)
		tr := &http.Transport{}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 20)
		_, err = io.ReadFull(resp.Body, buf)
		want := int64(-1)
		if sized {
			want = int64(len(whole))
		}
		if err != nil || string(buf) != whole[:20] || resp.ContentLength != want {
			t.Errorf("stall (sized %t): %q %d %v", sized, buf, resp.ContentLength, err)
		}
		cancel()
		resp.Body.Close()
		tr.CloseIdleConnections()
	}
	s.On("/v2/keys/k", Redirect(http.StatusTemporaryRedirect, "http://127.0.0.1:1")).Times(1)
	resp, _, _ = get(t, s, "/v2/keys/k?recursive=true")
	if resp.StatusCode != 307 || resp.Header.Get("Location") != "http://127.0.0.1:1/v2/keys/k?recursive=true" {
		t.Errorf("Redirect: %v %v", resp.StatusCode, resp.Header)
	}
	s.On("/v2/keys/k", NoLeader()).Times(1)
	resp, body, _ = get(t, s, "/v2/keys/k")
	if resp.StatusCode != 500 || body != `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`+"\n" {
		t.Errorf("NoLeader: %v %q", resp.StatusCode, body)
	}
	s.On("/v2/keys/k", Body(`{"broken`)).Times(1)
	resp, body, _ = get(t, s, "/v2/keys/k")
	if resp.StatusCode != 200 || body != `{"broken` || resp.Header.Get("X-Etcd-Index") == "" {
		t.Errorf("Body: %v %q", resp.StatusCode, body)
	}
}

func TestLeaderAndHealth(t *testing.T) {
	s := Start(t, Options{})
	s.SetLeader("")
	resp, body, _ := get(t, s, "/health")
	if resp.StatusCode != 503 || body != `{"health":"false","reason":"RAFT NO LEADER"}`+"\n" {
		t.Errorf("health without leader: %v %q", resp.StatusCode, body)
	}
	resp, body, _ = get(t, s, "/v2/members/leader")
	if resp.StatusCode != 503 || body != `{"message":"During election"}` {
		t.Errorf("leader during election: %v %q", resp.StatusCode, body)
	}
	s.AddMember("91bc3c398fb3c146", "two", []string{"http://127.0.0.1:2"}, []string{"http://127.0.0.1:3"})
	s.SetLeader("91bc3c398fb3c146")
	_, body, _ = get(t, s, "/v2/members/leader")
	if body != `{"id":"91bc3c398fb3c146","name":"two","peerURLs":["http://127.0.0.1:2"],"clientURLs":["http://127.0.0.1:3"]}`+"\n" {
		t.Errorf("leader: %q", body)
	}
}

// TestTTLOnAFakeClock: keys expire by Options.Now, with an expire event.
func TestTTLOnAFakeClock(t *testing.T) {
	var nanos atomic.Int64
	nanos.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s := Start(t, Options{Now: func() time.Time { return time.Unix(0, nanos.Load()) }})
	req, _ := http.NewRequest("PUT", s.URL+"/v2/keys/t?ttl=10", strings.NewReader("value=v"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer http.DefaultClient.CloseIdleConnections()
	nanos.Add(int64(9500 * time.Millisecond))
	_, body, _ := get(t, s, "/v2/keys/t")
	if !strings.Contains(body, `"expiration":"2026-01-01T00:00:10Z","ttl":1`) {
		t.Errorf("before expiry: %q", body)
	}
	nanos.Add(int64(time.Second))
	resp, body, _ = get(t, s, "/v2/keys/t")
	if resp.StatusCode != 404 {
		t.Errorf("after expiry: %v %q", resp.StatusCode, body)
	}
	_, body, _ = get(t, s, "/v2/keys/t?wait=true&waitIndex=5")
	if !strings.HasPrefix(body, `{"action":"expire","node":{"key":"/t","modifiedIndex":5,"createdIndex":4}`) {
		t.Errorf("expire event: %q", body)
	}
}

// TestExpiryWakesAWatch: a key whose TTL runs out is deleted without
// another request, and a waiting watch gets the expire event.
func TestExpiryWakesAWatch(t *testing.T) {
	var nanos atomic.Int64
	nanos.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	s := Start(t, Options{Now: func() time.Time { return time.Unix(0, nanos.Load()) }})
	req, _ := http.NewRequest("PUT", s.URL+"/v2/keys/t?ttl=5", strings.NewReader("value=v"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer http.DefaultClient.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", s.URL+"/v2/keys/t?wait=true", nil)
	resp, err = http.DefaultClient.Do(req) // returns once the watch is registered
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	nanos.Add(int64(5 * time.Second))
	b, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasPrefix(string(b), `{"action":"expire","node":{"key":"/t","modifiedIndex":5,"createdIndex":4}`) {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestHistoryWatchesAndHold(t *testing.T) {
	s := Start(t, Options{History: 5})
	s.Set("/other", "v")
	start := s.Index()
	for i := 0; i < 5; i++ {
		s.Set("/other", "v")
	}
	resp, body, _ := get(t, s, "/v2/keys/k?wait=true&waitIndex="+uitoa(start))
	if resp.StatusCode != 400 || !strings.Contains(body, `"errorCode":401`) {
		t.Errorf("a watch before a history of 5: %d %q, want error 401", resp.StatusCode, body)
	}
	s.HoldEvents(true)
	done := make(chan string, 1)
	go func() {
		_, body, _ := get(t, s, "/v2/keys/k?wait=true")
		done <- body
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.Watches() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the watch is not open")
		}
		time.Sleep(time.Millisecond)
	}
	s.Set("/k", "v")
	select {
	case body := <-done:
		t.Fatalf("an event came while held: %q", body)
	case <-time.After(50 * time.Millisecond):
	}
	s.HoldEvents(false)
	if body := <-done; !strings.Contains(body, `"key":"/k"`) {
		t.Errorf("after the hold: %q", body)
	}
	for s.Watches() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the watch is still open after its answer")
		}
		time.Sleep(time.Millisecond)
	}
}
