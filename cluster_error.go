package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ClusterError is returned when no endpoint of the cluster gave a usable
// answer.
//
// Errors holds what the original client put there: one entry per endpoint
// tried, in the order first tried, the error of the last attempt there as
// the transport gave it (a *net.OpError for a refused connection, say), so
// that type assertions written for the original client keep working. An
// endpoint that sent no headers within the per-attempt timeout gives an
// error with the original client's text ("client: endpoint ... exceeded
// header timeout") that matches ErrAttemptTimeout, and a 5xx answer one
// with its text ("client: etcd member ... has no leader") that unwraps to
// the server's answer.
//
// Attempts records every attempt, in order, each as an *EndpointError that
// names the endpoint (or the *OutcomeUnknownError of a write that may have
// been applied), and request-level causes such as ErrRetryBudgetExhausted.
//
// A ClusterError matches ErrClusterUnavailable with errors.Is, and errors.Is
// and errors.As also look into every attempt (or into Errors when Attempts
// is empty), so errors.Is(err, ErrAttemptTimeout), errors.As(err,
// &endpointErr) or errors.As(err, &client.Error{}) work on it directly.
type ClusterError struct {
	Errors []error
	// Attempts is every attempt's error, in order.
	Attempts []error
}

// newClusterError builds the ClusterError of a request from the errors of
// its attempts (*EndpointError, or request-level errors).
func newClusterError(attempts []error) *ClusterError {
	ce := &ClusterError{Attempts: attempts}
	at := map[string]int{}
	for _, a := range attempts {
		var ee *EndpointError
		var oe *OutcomeUnknownError
		switch {
		case errors.As(a, &ee):
		case errors.As(a, &oe):
			ee = &EndpointError{Endpoint: oe.Endpoint, Err: oe.Err}
		default:
			continue // not about one endpoint
		}
		e := originalEntry(ee)
		if i, ok := at[ee.Endpoint]; ok {
			ce.Errors[i] = e
			continue
		}
		at[ee.Endpoint] = len(ce.Errors)
		ce.Errors = append(ce.Errors, e)
	}
	return ce
}

// outcomeUnknown is the error of write r whose attempt at endpoint may
// have reached the server and ended with err, after the failed attempts
// before it: the *OutcomeUnknownError, inside a *ClusterError unless the
// original client returned the bare error of such a write (see
// OutcomeUnknownError).
func outcomeUnknown(attempts []error, endpoint string, r *request, err error) error {
	oe := &OutcomeUnknownError{Endpoint: endpoint, Err: err}
	if originalOneShot(r) {
		return oe
	}
	return newClusterError(append(attempts, oe))
}

// originalOneShot reports whether the original client sent r to one member
// only and returned the bare error of a failure: a create (prevExist=false)
// and an in-order create.
func originalOneShot(r *request) bool {
	if r.kind != KindWrite {
		return false
	}
	return r.method == http.MethodPost || strings.Contains("&"+r.query+"&", "&prevExist=false&")
}

// originalEntry is the entry the original client recorded for the failure
// of ee.
func originalEntry(ee *EndpointError) error {
	var tle *TLSError
	if errors.As(ee.Err, &tle) && tle.transportErr != nil {
		return tle.transportErr
	}
	var te *AttemptTimeoutError
	if errors.As(ee.Err, &te) {
		return &entryError{text: "client: endpoint " + ee.Endpoint + " exceeded header timeout", err: ee.Err}
	}
	var he *HTTPError
	if errors.As(ee.Err, &he) && he.StatusCode >= 500 {
		if he.StatusCode == http.StatusInternalServerError || he.StatusCode == http.StatusServiceUnavailable {
			return &entryError{text: "client: etcd member " + ee.Endpoint + " has no leader", err: ee.Err}
		}
		return &entryError{text: "client: etcd member " + ee.Endpoint + " returns server error [" + http.StatusText(he.StatusCode) + "]", err: ee.Err}
	}
	var ke Error
	if errors.As(ee.Err, &ke) && ke.Code >= 300 && ke.Code < 400 {
		// etcd sends its 3xx errors (raft, leader election) with HTTP 500.
		return &entryError{text: "client: etcd member " + ee.Endpoint + " has no leader", err: ee.Err}
	}
	return ee.Err
}

// entryError is an entry of ClusterError.Errors with the original client's
// text; it unwraps to the cause.
type entryError struct {
	text string
	err  error
}

func (e *entryError) Error() string { return e.text }
func (e *entryError) Unwrap() error { return e.err }

// Error returns the original client's text: ErrClusterUnavailable's text
// followed by every entry of Errors, each ended by a newline.
func (ce *ClusterError) Error() string {
	var b strings.Builder
	b.WriteString(ErrClusterUnavailable.Error())
	for i, e := range ce.Errors {
		fmt.Fprintf(&b, "; error #%d: %s\n", i, e)
	}
	return b.String()
}

// Detail returns every entry of Errors, one a line, as the original client.
// AttemptsDetail tells which endpoint said what.
func (ce *ClusterError) Detail() string {
	var b strings.Builder
	for i, e := range ce.Errors {
		fmt.Fprintf(&b, "error #%d: %s\n", i, e)
	}
	return b.String()
}

// AttemptsDetail returns every attempt's error with its endpoint, one a line.
func (ce *ClusterError) AttemptsDetail() string {
	var b strings.Builder
	for i, e := range ce.Attempts {
		fmt.Fprintf(&b, "attempt #%d: %s\n", i, e)
	}
	return b.String()
}

// Unwrap returns Attempts, or Errors when Attempts is empty.
func (ce *ClusterError) Unwrap() []error {
	if len(ce.Attempts) > 0 {
		return ce.Attempts
	}
	return ce.Errors
}

// Is reports whether target is ErrClusterUnavailable.
func (ce *ClusterError) Is(target error) bool { return target == ErrClusterUnavailable }

// EndpointError is what one attempt at one endpoint ended with.
type EndpointError struct {
	// Endpoint is the URL of the endpoint, as configured.
	Endpoint string
	// Err is the cause.
	Err error
}

// Error describes the failure.
func (e *EndpointError) Error() string { return e.Endpoint + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *EndpointError) Unwrap() error { return e.Err }
