package client

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/etcdv2/client/internal/v2fake"
)

func TestMembersList(t *testing.T) {
	s := newFake(t)
	s.On("GET /v2/members", v2fake.Respond(200, `{"members":[
		{"id":"8e9e05c52164694d","name":"n1","peerURLs":["http://127.0.0.1:2380"],"clientURLs":["http://127.0.0.1:2379"]},
		{"id":"91bc3c398fb3c146","name":"","peerURLs":["http://127.0.0.1:2382"],"clientURLs":[]}]}`))
	ms, err := NewMembersAPI(newAPIClient(t, Config{}, s)).List(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{
		{ID: "8e9e05c52164694d", Name: "n1", PeerURLs: []string{"http://127.0.0.1:2380"}, ClientURLs: []string{"http://127.0.0.1:2379"}},
		{ID: "91bc3c398fb3c146", PeerURLs: []string{"http://127.0.0.1:2382"}, ClientURLs: []string{}},
	}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("got %+v, want %+v", ms, want)
	}
}

func TestMembersAdd(t *testing.T) {
	const peer = "http://127.0.0.1:2390"
	tests := []struct {
		name   string
		status int
		body   string
		is     error
	}{
		{"created", 201, `{"id":"91bc3c398fb3c146","name":"","peerURLs":["http://127.0.0.1:2390"],"clientURLs":[]}`, nil},
		{"conflict", 409, `{"message":"membership: peerURL exists"}`, ErrMemberExists},
		{"bad URL", 400, `{"message":"URL scheme must be http, https, unix, or unixs: x"}`, ErrInvalidPeerURL},
		{"unauthorized", 401, `{"message":"Insufficient credentials"}`, ErrInsufficientCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			s.On("POST /v2/members", v2fake.Respond(tt.status, tt.body))
			m, err := NewMembersAPI(newAPIClient(t, Config{}, s)).Add(testCtx(t), peer)
			req := lastRequest(t, s)
			if req.Body != `{"peerURLs":["http://127.0.0.1:2390"]}` || req.ContentType != "application/json" {
				t.Errorf("sent %q with content type %q", req.Body, req.ContentType)
			}
			if tt.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				if m.ID != "91bc3c398fb3c146" || !reflect.DeepEqual(m.PeerURLs, []string{peer}) {
					t.Errorf("got %+v", m)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("got %v, want an error matching %v", err, tt.is)
			}
			var me *MemberError
			if !errors.As(err, &me) || me.StatusCode != tt.status || me.Op != "add" {
				t.Errorf("got %#v", err)
			}
		})
	}
}

func TestMembersAddServerErrorIsNotResent(t *testing.T) {
	a, b := newFake(t), newFake(t)
	for _, s := range []*v2fake.Server{a, b} {
		s.On("POST /v2/members", v2fake.Respond(500, `{"message":"etcdserver: request timed out"}`))
	}
	_, err := NewMembersAPI(newAPIClient(t, Config{}, a, b)).Add(testCtx(t), "http://127.0.0.1:2390")
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("got %v, want an outcome-unknown error", err)
	}
	if n := len(a.Requests()) + len(b.Requests()); n != 1 {
		t.Errorf("%d requests sent, want 1", n)
	}
}

func TestMembersArgumentErrors(t *testing.T) {
	s := newFake(t)
	api := NewMembersAPI(newAPIClient(t, Config{}, s))
	ctx := testCtx(t)
	for _, u := range []string{"", "127.0.0.1:2380", "ftp://127.0.0.1:2380", "http://127.0.0.1", "http://127.0.0.1:2380/path", "http://[::1"} {
		_, err := api.Add(ctx, u)
		var ae *ArgumentError
		if !errors.Is(err, ErrInvalidPeerURL) || !errors.As(err, &ae) {
			t.Errorf("Add(%q): got %v, want an ArgumentError matching ErrInvalidPeerURL", u, err)
		}
		if err := api.Update(ctx, "8e9e05c52164694d", []string{"http://127.0.0.1:2380", u}); !errors.Is(err, ErrInvalidPeerURL) {
			t.Errorf("Update(%q): got %v", u, err)
		}
	}
	// As the original client and the server, which accept these.
	for _, u := range []string{"http://127.0.0.1:2380", "https://[::1]:2380", "unix://localhost:2380", "unixs://h:1", "unix:sock", "http://127.0.0.1:2380?x=1", " http://127.0.0.1:2380 "} {
		if p := peerURLProblem(u); p != "" {
			t.Errorf("%q rejected: %s", u, p)
		}
	}
	if err := api.Update(ctx, "8e9e05c52164694d", nil); !errors.Is(err, ErrInvalidPeerURL) {
		t.Errorf("Update without URLs: got %v", err)
	}
	for _, id := range []string{"", "xyz", "0", "12/34", "8e9e05c52164694d0", "-1"} {
		if err := api.Remove(ctx, id); !errors.Is(err, ErrInvalidMemberID) {
			t.Errorf("Remove(%q): got %v", id, err)
		}
		if err := api.Update(ctx, id, []string{"http://127.0.0.1:2380"}); !errors.Is(err, ErrInvalidMemberID) {
			t.Errorf("Update(%q): got %v", id, err)
		}
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d requests sent for invalid arguments", n)
	}
}

func TestMembersRemove(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		is     error // nil: success
	}{
		{"no content", 204, ``, nil},
		{"gone counts as removed", 410, `{"message":"Member permanently removed: 8e9e05c52164694d"}`, nil},
		{"not found", 404, `{"message":"No such member: 8e9e05c52164694d"}`, ErrMemberNotFound},
		{"unauthorized", 401, `{"message":"Insufficient credentials"}`, ErrInsufficientCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			s.On("DELETE /v2/members/8e9e05c52164694d", v2fake.Respond(tt.status, tt.body))
			err := NewMembersAPI(newAPIClient(t, Config{}, s)).Remove(testCtx(t), "8e9e05c52164694d")
			if tt.is == nil && err != nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("got %v, want %v", err, tt.is)
			}
			if tt.is != nil {
				// The original client's text; Detail names the member.
				wantContains(t, err.Error(), fmt.Sprintf("unexpected status code %d", tt.status))
				var me *MemberError
				if !errors.As(err, &me) {
					t.Fatalf("%T is no *MemberError", err)
				}
				wantContains(t, me.Detail(), "8e9e05c52164694d")
			}
		})
	}
}

func TestMembersUpdate(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		is     error
	}{
		{"no content", 204, ``, nil},
		{"not found", 404, `{"message":"No such member: 8e9e05c52164694d"}`, ErrMemberNotFound},
		{"peer URL in use", 409, `{"message":"membership: peerURL exists"}`, ErrMemberExists},
		{"bad URL", 400, `{"message":"URL scheme must be http, https, unix, or unixs"}`, ErrInvalidPeerURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFake(t)
			s.On("PUT /v2/members/8e9e05c52164694d", v2fake.Respond(tt.status, tt.body))
			err := NewMembersAPI(newAPIClient(t, Config{}, s)).Update(testCtx(t), "8e9e05c52164694d", []string{"http://127.0.0.1:2391", "http://127.0.0.1:2392"})
			if tt.is == nil && err != nil || tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("got %v, want %v", err, tt.is)
			}
			req := lastRequest(t, s)
			if req.Body != `{"peerURLs":["http://127.0.0.1:2391","http://127.0.0.1:2392"]}` || req.ContentType != "application/json" {
				t.Errorf("sent %q (%q)", req.Body, req.ContentType)
			}
		})
	}
}

func TestMembersLeader(t *testing.T) {
	s := newFake(t)
	s.On("GET /v2/members/leader", v2fake.Respond(200, `{"id":"8e9e05c52164694d","name":"n1","peerURLs":["http://127.0.0.1:2380"],"clientURLs":["http://127.0.0.1:2379"]}`))
	m, err := NewMembersAPI(newAPIClient(t, Config{}, s)).Leader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "8e9e05c52164694d" || m.Name != "n1" {
		t.Errorf("got %+v", m)
	}
}

func TestMembersLeaderDuringElection(t *testing.T) {
	a, b, down := newFake(t), newFake(t), newFake(t)
	for _, s := range []*v2fake.Server{a, b} {
		s.On("GET /v2/members/leader", v2fake.Respond(503, `{"message":"During election"}`))
	}
	down.Close()
	c := newAPIClient(t, Config{Rounds: 1}, a, down, b)
	_, err := NewMembersAPI(c).Leader(testCtx(t))
	if !IsElectionInProgress(err) {
		t.Fatalf("got %v, want an election in progress", err)
	}
	var ee *ElectionInProgressError
	var ce *ClusterError
	if !errors.As(err, &ee) || !errors.As(err, &ce) || len(ce.Errors) != 3 || !errors.Is(err, ErrClusterUnavailable) {
		t.Errorf("got %#v", err)
	}
	// The original client's text: a ClusterError, "has no leader" per
	// member that answered 503; Detail says more.
	if err.Error() != ce.Error() {
		t.Errorf("Error() = %q, want the ClusterError's %q", err.Error(), ce.Error())
	}
	wantContains(t, err.Error(), "client: etcd member "+a.URL+" has no leader")
	wantContains(t, ee.Detail(), "election")
	if len(a.Requests()) != 1 || len(b.Requests()) != 1 {
		t.Errorf("each member should be asked once")
	}
}

func TestMembersLeaderElectionDecidedByStatus(t *testing.T) {
	// A 500 that says "During election" is not an election answer; a 503
	// with any text is.
	s := newFake(t)
	s.On("GET /v2/members/leader", v2fake.Respond(500, `{"message":"During election"}`))
	_, err := NewMembersAPI(newAPIClient(t, Config{}, s)).Leader(testCtx(t))
	if err == nil || IsElectionInProgress(err) {
		t.Errorf("500: got %v", err)
	}
	s.On("GET /v2/members/leader", v2fake.Respond(503, `{"message":"something else"}`))
	_, err = NewMembersAPI(newAPIClient(t, Config{}, s)).Leader(testCtx(t))
	if !IsElectionInProgress(err) {
		t.Errorf("503: got %v", err)
	}
	if IsElectionInProgress(&HTTPError{StatusCode: http.StatusServiceUnavailable}) {
		t.Error("a bare HTTPError is not an answer of Leader")
	}
}

func TestMembersBadJSON(t *testing.T) {
	s := newFake(t)
	s.On("GET /v2/members", v2fake.Respond(200, `<html>`))
	_, err := NewMembersAPI(newAPIClient(t, Config{}, s)).List(testCtx(t))
	if !errors.Is(err, ErrInvalidJSON) {
		t.Errorf("got %v", err)
	}
}
