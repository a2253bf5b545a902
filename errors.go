package client

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Errors returned by the cluster client. They are compared with errors.Is.
var (
	// ErrNoEndpoints is returned when the client has no endpoint to send a
	// request to, or when SetEndpoints or Sync would leave it with none.
	ErrNoEndpoints = errors.New("client: no endpoints available")

	// ErrTooManyRedirects is returned by DefaultCheckRedirect after 10 redirects.
	ErrTooManyRedirects = errors.New("client: too many redirects")

	// ErrClusterUnavailable is what every *ClusterError matches with errors.Is:
	// no endpoint of the cluster gave a usable answer.
	ErrClusterUnavailable = errors.New("client: etcd cluster is unavailable or misconfigured")

	// ErrNoLeaderEndpoint is returned when the leader is asked for and no
	// endpoint of the client is the leader's.
	ErrNoLeaderEndpoint = errors.New("client: no leader endpoint available")
)

// Errors about the content of a response.
var (
	// ErrInvalidJSON is wrapped by decoding errors: the endpoint answered
	// with something that is not the JSON an etcd server sends.
	//lint:ignore ST1005 the official client's text, kept word for word
	ErrInvalidJSON = errors.New("client: response is invalid json. The endpoint is probably not valid etcd cluster endpoint.")

	// ErrEmptyBody is returned when a response that must carry a body has none.
	ErrEmptyBody = errors.New("client: response body is empty")
)

// Errors added by this package; none of them existed in the original v2 client.
var (
	// ErrOutcomeUnknown is matched (errors.Is) by an error returned for a
	// write that may have reached a server but whose answer was not
	// received, or was a server error: the write may or may not have been
	// applied, and the client did not resend it. See OutcomeUnknownError.
	ErrOutcomeUnknown = errors.New("client: outcome of the write is unknown")

	// ErrClusterIDMismatch is matched by a ClusterIDMismatchError: an
	// endpoint belongs to another etcd cluster than the one this client
	// first talked to.
	ErrClusterIDMismatch = errors.New("client: endpoint belongs to another cluster")

	// ErrResponseTooLarge is returned, wrapped, when a response body is
	// larger than Config.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("client: response body too large")

	// ErrAttemptTimeout is matched by the per-endpoint error recorded when
	// an endpoint did not send response headers within the per-attempt
	// timeout (Config.HeaderTimeoutPerRequest).
	ErrAttemptTimeout = errors.New("client: no response headers within the per-attempt timeout")

	// ErrClosed is returned by calls made after Client.Close.
	ErrClosed = errors.New("client: closed")

	// ErrInvalidEndpoint is matched by the error returned for an endpoint
	// that is not an absolute http or https URL.
	ErrInvalidEndpoint = errors.New("client: invalid endpoint")
)

// OutcomeUnknownError is returned for a write that is not safe to replay
// (a set, unless Config.ResendUnconditionalSets allows resending it; a
// create, a compare-and-swap or compare-and-delete, an in-order create, a
// delete, a membership or auth change) after its request may have reached a
// server and no definite answer came back: the connection broke after the
// request was written, the per-attempt timeout fired, Close cut it off (the
// error then also matches ErrClosed), or the server answered with a 5xx
// error such as a raft timeout (etcd error 300), after which the write can
// still be committed.
//
// The write may or may not have been applied. The client does not resend it
// to another member, because a resend could apply it twice or turn success
// into a misleading error (a second create failing with "key exists"). Read
// the key to find out.
type OutcomeUnknownError struct {
	// Endpoint is the endpoint the request was sent to.
	Endpoint string
	// Err is what happened: a transport error, a timeout, or the server's error.
	Err error
}

// Error describes the failure.
func (e *OutcomeUnknownError) Error() string {
	return "client: outcome of the write is unknown (request may have reached " + e.Endpoint + "): " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// Is reports whether target is ErrOutcomeUnknown.
func (e *OutcomeUnknownError) Is(target error) bool { return target == ErrOutcomeUnknown }

// ClusterIDMismatchError reports an endpoint whose X-Etcd-Cluster-Id header
// differs from the cluster ID the client saw first.
type ClusterIDMismatchError struct {
	Endpoint string
	// Want is the cluster ID the client saw first; Got is the endpoint's.
	Want, Got string
}

// Error describes the failure.
func (e *ClusterIDMismatchError) Error() string {
	return fmt.Sprintf("client: endpoint %s belongs to cluster %s, not to cluster %s", e.Endpoint, e.Got, e.Want)
}

// Is reports whether target is ErrClusterIDMismatch.
func (e *ClusterIDMismatchError) Is(target error) bool { return target == ErrClusterIDMismatch }

// HTTPError is an answer with an unexpected HTTP status whose body is not an
// etcd key error (see Error). The members and auth APIs answer errors this
// way, with a body of the form {"message": "..."}.
type HTTPError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the server's message, or the start of the body when it
	// was not of the form {"message": "..."}.
	Message string
}

// Error describes the failure.
func (e *HTTPError) Error() string {
	s := "client: unexpected HTTP status " + strconv.Itoa(e.StatusCode)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// AttemptTimeoutError is recorded for an attempt that got no response
// headers within the per-attempt timeout. It matches ErrAttemptTimeout.
type AttemptTimeoutError struct {
	// After is the per-attempt timeout that expired.
	After time.Duration
	// MemberAlive is set when the request went through raft (a write, a
	// quorum read) and the member still answered a liveness check after
	// the timeout: raft held the request (a leader election, a slow
	// commit), the member itself is not hung, and it is not ejected for it.
	MemberAlive bool
	// byDeadline is set when the timeout was cut short to leave time of
	// the caller's deadline for other endpoints: the member is not
	// blamed for it.
	byDeadline bool
}

// Error describes the failure.
func (e *AttemptTimeoutError) Error() string {
	if e.MemberAlive {
		return "client: no response headers within " + e.After.String() + " (the member answers, but raft held the request: no leader, or a slow commit)"
	}
	return "client: no response headers within " + e.After.String()
}

// Is reports whether target is ErrAttemptTimeout.
func (e *AttemptTimeoutError) Is(target error) bool { return target == ErrAttemptTimeout }

// Timeout reports true, like the net.Error of a timed-out connection.
func (e *AttemptTimeoutError) Timeout() bool { return true }

// Error codes of the etcd v2 keys API, as sent in the errorCode field.
const (
	ErrorCodeKeyNotFound  = 100
	ErrorCodeTestFailed   = 101
	ErrorCodeNotFile      = 102
	ErrorCodeNotDir       = 104
	ErrorCodeNodeExist    = 105
	ErrorCodeRootROnly    = 107
	ErrorCodeDirNotEmpty  = 108
	ErrorCodeUnauthorized = 110

	ErrorCodePrevValueRequired = 201
	ErrorCodeTTLNaN            = 202
	ErrorCodeIndexNaN          = 203
	ErrorCodeInvalidField      = 209
	ErrorCodeInvalidForm       = 210

	ErrorCodeRaftInternal = 300
	ErrorCodeLeaderElect  = 301

	ErrorCodeWatcherCleared    = 400
	ErrorCodeEventIndexCleared = 401
)

// Error is an error answer of the etcd keys API. Its Code is one of the
// ErrorCode constants (or another code a server sends); Cause gives detail
// such as the key; Index is the store index at the time of the error.
//
// An Error matches another Error with the same Code under errors.Is, so
// errors.Is(err, client.Error{Code: client.ErrorCodeKeyNotFound}) tells a
// missing key, also when err wraps the Error. The client returns Error as a
// value, so err.(client.Error) works on the errors of the keys API.
type Error struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"`
}

// Error describes the failure.
func (e Error) Error() string {
	return fmt.Sprintf("%v: %v (%v) [%v]", e.Code, e.Message, e.Cause, e.Index)
}

// Is reports whether target is an Error (or *Error) with the same Code.
func (e Error) Is(target error) bool {
	switch t := target.(type) {
	case Error:
		return t.Code == e.Code
	case *Error:
		return t != nil && t.Code == e.Code
	}
	return false
}

// IsKeyNotFound returns true if the error code is ErrorCodeKeyNotFound.
func IsKeyNotFound(err error) bool {
	return errors.Is(err, Error{Code: ErrorCodeKeyNotFound})
}
