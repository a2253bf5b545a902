package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Member is one member of an etcd cluster, as the members API describes it.
type Member struct {
	// ID is the unique identifier of this Member.
	ID string `json:"id"`

	// Name is a human-readable, non-unique identifier of this Member.
	Name string `json:"name"`

	// PeerURLs represents the HTTP(S) endpoints this Member uses to
	// participate in etcd's consensus protocol.
	PeerURLs []string `json:"peerURLs"`

	// ClientURLs represents the HTTP(S) endpoints on which this Member
	// serves it's client-facing APIs.
	ClientURLs []string `json:"clientURLs"`
}

// MembersAPI reads and changes the membership of the cluster through the v2
// members API (/v2/members). Its methods are safe for concurrent use.
//
// Reads (List, Leader) are sent to one member after another until one
// answers. Changes (Add, Remove, Update) are sent once: when one may have
// reached a server without a definite answer the call fails with an error
// matching ErrOutcomeUnknown (see OutcomeUnknownError), since the change may
// still be applied. Error answers are *MemberError values, matched with
// errors.Is against ErrMemberExists, ErrMemberNotFound, ErrInvalidPeerURL and
// ErrInsufficientCredentials.
type MembersAPI interface {
	// List enumerates the current cluster membership.
	List(ctx context.Context) ([]Member, error)

	// Add instructs etcd to accept a new Member into the cluster.
	Add(ctx context.Context, peerURL string) (*Member, error)

	// Remove demotes an existing Member out of the cluster.
	Remove(ctx context.Context, mID string) error

	// Update instructs etcd to update an existing Member in the cluster.
	Update(ctx context.Context, mID string, peerURLs []string) error

	// Leader gets current leader of the cluster
	Leader(ctx context.Context) (*Member, error)
}

// NewMembersAPI constructs a new MembersAPI that uses HTTP to interact with
// etcd's membership API.
func NewMembersAPI(c Client) MembersAPI {
	return &httpMembersAPI{client: c}
}

// Errors of the members API, matched with errors.Is.
var (
	// ErrMemberExists is matched by the answer 409 Conflict to Add or
	// Update: another member already has that peer URL (or the generated
	// ID). After an Add whose outcome was unknown, it can mean that the
	// first attempt was applied.
	ErrMemberExists = errors.New("client: a member with that peer URL already exists")

	// ErrMemberNotFound is matched by the answer 404 to Remove or Update:
	// no member has that ID.
	ErrMemberNotFound = errors.New("client: no such member")

	// ErrMemberRemoved is matched by the answer 410 Gone: the member was
	// removed from the cluster before. Remove does not return it (see
	// MembersAPI); it is here for callers that look at raw answers.
	ErrMemberRemoved = errors.New("client: member permanently removed")

	// ErrInvalidPeerURL is matched by an ArgumentError for a peer URL that
	// is not an absolute http, https, unix or unixs URL of the form
	// scheme://host:port, and by the answer 400 to Add or Update (the only
	// reason a server rejects the well-formed body this client sends).
	ErrInvalidPeerURL = errors.New("client: invalid peer URL")

	// ErrInvalidMemberID is matched by an ArgumentError for a member ID
	// that is not a non-zero hexadecimal uint64, the form etcd uses.
	ErrInvalidMemberID = errors.New("client: invalid member ID")

	// ErrElectionInProgress is matched by the error of Leader when the
	// members that answered know no leader: an election is in progress,
	// or the cluster has lost its quorum and cannot elect one. See
	// IsElectionInProgress.
	ErrElectionInProgress = errors.New("client: leader election in progress")

	// ErrInsufficientCredentials is matched by a *MemberError or *AuthError
	// for the answer 401 Unauthorized: auth is enabled and the client's
	// credentials are missing, wrong, or not those of a root user.
	ErrInsufficientCredentials = errors.New("client: insufficient credentials")
)

// IsElectionInProgress reports whether err says that the cluster has no
// leader at the moment: MembersAPI.Leader returns such an error when the
// members answered 503 Service Unavailable to GET /v2/members/leader. The
// decision is made from the status, not from the text of the message.
func IsElectionInProgress(err error) bool {
	return errors.Is(err, ErrElectionInProgress)
}

// MemberError is an error answer of the members API: any status the
// operation does not expect, with the server's {"message": ...}.
type MemberError struct {
	// Op is the operation: "list", "add", "remove", "update" or "leader".
	Op string
	// Member is the member ID (remove, update) or the peer URLs (add) the
	// operation was about, or "".
	Member string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Message is the server's message, like "membership: peerURL exists".
	Message string

	// text is the original client's text for the answer; set is whether
	// it was made.
	text string
	set  bool
}

// Error returns the original client's text for the same answer: the
// server's message for a 409 of add and a 404 or 409 of update, "unexpected
// status code N" otherwise. Detail tells the operation as well.
func (e *MemberError) Error() string {
	if e.set {
		return e.text
	}
	return e.Detail()
}

// Detail describes the failed operation and the server's answer.
func (e *MemberError) Detail() string {
	s := "client: members: " + e.Op
	if e.Member != "" {
		s += " " + e.Member
	}
	s += ": HTTP " + strconv.Itoa(e.StatusCode)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches the sentinel errors by the HTTP status: 409 ErrMemberExists,
// 404 ErrMemberNotFound, 410 ErrMemberRemoved, 400 (add, update)
// ErrInvalidPeerURL, 401 ErrInsufficientCredentials.
func (e *MemberError) Is(target error) bool {
	switch target {
	case ErrMemberExists:
		return e.StatusCode == http.StatusConflict
	case ErrMemberNotFound:
		return e.StatusCode == http.StatusNotFound && (e.Op == "remove" || e.Op == "update")
	case ErrMemberRemoved:
		return e.StatusCode == http.StatusGone
	case ErrInvalidPeerURL:
		return e.StatusCode == http.StatusBadRequest && (e.Op == "add" || e.Op == "update")
	case ErrInsufficientCredentials:
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

// ElectionInProgressError is returned by MembersAPI.Leader when the members
// that answered know no leader (HTTP 503 "During election"). It matches
// ErrElectionInProgress, and unwraps to the *ClusterError that lists what
// each endpoint answered.
type ElectionInProgressError struct {
	// Err is the *ClusterError with the answer of every endpoint tried.
	Err error
}

// Error returns the original client's text for the same answers: that of
// the *ClusterError. Detail says what happened.
func (e *ElectionInProgressError) Error() string { return e.Err.Error() }

// Detail says that no leader is known and lists what each endpoint answered.
func (e *ElectionInProgressError) Detail() string {
	d := e.Err.Error()
	var ce *ClusterError
	if errors.As(e.Err, &ce) {
		d = ce.AttemptsDetail()
	}
	return "client: members: leader: no leader, an election is in progress or the cluster has lost quorum:\n" + d
}

// Unwrap returns the *ClusterError.
func (e *ElectionInProgressError) Unwrap() error { return e.Err }

// Is reports whether target is ErrElectionInProgress.
func (e *ElectionInProgressError) Is(target error) bool { return target == ErrElectionInProgress }

// ArgumentError reports an argument rejected before any request was sent.
// It unwraps to a sentinel such as ErrInvalidPeerURL, ErrInvalidMemberID or
// ErrInvalidName. It never holds a password.
type ArgumentError struct {
	// Op is the operation, like "members: add" or "auth: add user".
	Op string
	// Arg names the argument; Value is what was given.
	Arg, Value string
	// Reason says what is wrong.
	Reason string
	// Err is the sentinel the error matches.
	Err error

	// text is the original client's text, for the checks it made too;
	// set is whether there is one.
	text string
	set  bool
}

// Error returns the original client's text for an argument it rejected
// too (a peer URL: "URL scheme must be http, https, unix, or unixs: foo"),
// and Detail's otherwise.
func (e *ArgumentError) Error() string {
	if e.set {
		return e.text
	}
	return e.Detail()
}

// Detail names the operation, the argument and what is wrong with it.
func (e *ArgumentError) Detail() string {
	return fmt.Sprintf("client: %s: invalid %s %q: %s", e.Op, e.Arg, e.Value, e.Reason)
}

// Unwrap returns the sentinel.
func (e *ArgumentError) Unwrap() error { return e.Err }

type httpMembersAPI struct {
	client Client
}

// memberList is the answer of GET /v2/members.
type memberList struct {
	Members []Member `json:"members"`
}

// List implements MembersAPI.
func (m *httpMembersAPI) List(ctx context.Context) ([]Member, error) {
	resp, err := m.client.do(ctx, clusterGet("/v2/members"))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, memberError(resp, "list", "")
	}
	var v memberList
	if err := decodeResponse(resp, http.StatusOK, &v); err != nil {
		return nil, err
	}
	return v.Members, nil
}

// Add implements MembersAPI. It answers the new member (its Name and
// ClientURLs stay empty until it starts), or a *MemberError: 409 when a
// member has that peer URL, 400 when the server rejects the URL.
func (m *httpMembersAPI) Add(ctx context.Context, peerURL string) (*Member, error) {
	if err := checkPeerURLs("members: add", []string{peerURL}); err != nil {
		return nil, err
	}
	resp, err := m.client.do(ctx, peerURLsRequest(http.MethodPost, "/v2/members", []string{peerURL}))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, memberError(resp, "add", peerURL)
	}
	var mem Member
	if err := decodeResponse(resp, http.StatusCreated, &mem); err != nil {
		return nil, err
	}
	return &mem, nil
}

// Remove implements MembersAPI. The answer 410 Gone (the member was removed
// before) counts as success, as in the original client: the member is out
// of the cluster, which is what Remove asks for, and a Remove repeated after
// an unknown outcome does not fail. An unknown ID gives a *MemberError
// matching ErrMemberNotFound.
func (m *httpMembersAPI) Remove(ctx context.Context, mID string) error {
	if err := checkMemberID("members: remove", mID); err != nil {
		return err
	}
	resp, err := m.client.do(ctx, &request{method: http.MethodDelete, path: "/v2/members/" + mID, kind: KindCluster})
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusGone:
		return finishBody(resp.Body)
	}
	return memberError(resp, "remove", mID)
}

// Update implements MembersAPI. It replaces the peer URLs of a member;
// the member must then be reachable there for the cluster to talk to it.
func (m *httpMembersAPI) Update(ctx context.Context, mID string, peerURLs []string) error {
	if err := checkMemberID("members: update", mID); err != nil {
		return err
	}
	if err := checkPeerURLs("members: update", peerURLs); err != nil {
		return err
	}
	resp, err := m.client.do(ctx, peerURLsRequest(http.MethodPut, "/v2/members/"+mID, peerURLs))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return memberError(resp, "update", mID)
	}
	return finishBody(resp.Body)
}

// Leader implements MembersAPI. When the members that answer know no
// leader, it returns an *ElectionInProgressError (see
// IsElectionInProgress) rather than a bare *ClusterError.
func (m *httpMembersAPI) Leader(ctx context.Context) (*Member, error) {
	resp, err := m.client.do(ctx, clusterGet("/v2/members/leader"))
	if err != nil {
		if noLeaderAnswer(err) {
			return nil, &ElectionInProgressError{Err: err}
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, memberError(resp, "leader", "")
	}
	var mem Member
	if err := decodeResponse(resp, http.StatusOK, &mem); err != nil {
		return nil, err
	}
	return &mem, nil
}

// noLeaderAnswer reports whether a failed request was answered 503 by at
// least one member. Members that did not answer at all are down or hung;
// no member answered with a leader, or do would have returned it.
func noLeaderAnswer(err error) bool {
	var ce *ClusterError
	if !errors.As(err, &ce) {
		return false
	}
	for _, e := range ce.Errors {
		var he *HTTPError
		if errors.As(e, &he) && he.StatusCode == http.StatusServiceUnavailable {
			return true
		}
	}
	return false
}

func peerURLsRequest(method, path string, peerURLs []string) *request {
	body, _ := json.Marshal(struct {
		PeerURLs []string `json:"peerURLs"`
	}{peerURLs})
	return &request{method: method, path: path, body: body, contentType: "application/json", kind: KindCluster}
}

// memberError reads an unexpected answer into a *MemberError.
func memberError(resp *response, op, member string) error {
	status, msg, b := readErrorAnswer(resp)
	e := &MemberError{Op: op, Member: member, StatusCode: status, Message: msg, set: true}
	switch {
	case op == "add" && status == http.StatusConflict,
		op == "update" && (status == http.StatusNotFound || status == http.StatusConflict):
		e.text = originalMessage(b)
	default:
		e.text = "unexpected status code " + strconv.Itoa(status)
	}
	return e
}

// readErrorAnswer reads and closes the body of an error answer and returns
// its status, the server's message and the body.
func readErrorAnswer(resp *response) (int, string, []byte) {
	b, err := errorAnswer(resp.StatusCode, resp.Body)
	var he *HTTPError
	if errors.As(err, &he) {
		return resp.StatusCode, he.Message, b
	}
	var ee Error
	if errors.As(err, &ee) {
		return resp.StatusCode, ee.Error(), b
	}
	return resp.StatusCode, err.Error(), b
}

// originalMessage is the text the original client gave for an error answer
// of the members and auth APIs: the "message" of the JSON body, or the
// JSON error when the body is not JSON.
func originalMessage(b []byte) string {
	var v struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err.Error()
	}
	return v.Message
}

// checkMemberID accepts what etcd accepts as a member ID: a non-zero
// hexadecimal uint64.
func checkMemberID(op, id string) error {
	bad := func(reason string) error {
		return &ArgumentError{Op: op, Arg: "member ID", Value: id, Reason: reason, Err: ErrInvalidMemberID}
	}
	if id == "" {
		return bad("empty")
	}
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return bad("want a hexadecimal uint64 such as 8e9e05c52164694d")
	}
	if n == 0 {
		return bad("zero is not a member ID")
	}
	return nil
}

// checkPeerURLs accepts what etcd accepts as peer URLs: a non-empty list of
// scheme://host:port URLs whose scheme is http, https, unix or unixs,
// without a path, query, fragment or user.
func checkPeerURLs(op string, urls []string) error {
	if len(urls) == 0 {
		return &ArgumentError{Op: op, Arg: "peer URLs", Value: "", Reason: "no peer URL given", Err: ErrInvalidPeerURL,
			text: "no valid URLs given", set: true}
	}
	for _, s := range urls {
		if text := peerURLProblem(s); text != "" {
			return &ArgumentError{Op: op, Arg: "peer URL", Value: s, Reason: text, Err: ErrInvalidPeerURL, text: text, set: true}
		}
	}
	return nil
}

// peerURLProblem checks a peer URL as the original client did (and as the
// server does), and returns the original client's text for what is wrong
// with it, or "".
func peerURLProblem(s string) string {
	in := strings.TrimSpace(s)
	u, err := url.Parse(in)
	if err != nil {
		return err.Error()
	}
	switch u.Scheme {
	case "http", "https":
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return `URL address does not have the form "host:port": ` + in
		}
		if u.Path != "" {
			return "URL must not contain a path: " + in
		}
	case "unix", "unixs":
	default:
		return "URL scheme must be http, https, unix, or unixs: " + in
	}
	return ""
}
