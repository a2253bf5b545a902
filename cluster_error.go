package client

import (
	"fmt"
	"strings"
)

// ClusterError is returned when no endpoint of the cluster gave a usable
// answer. Errors holds one entry per attempt, in order; each is an
// *EndpointError that names the endpoint and wraps what went wrong there.
//
// A ClusterError matches ErrClusterUnavailable with errors.Is, and errors.Is
// and errors.As also look into every per-attempt error, so
// errors.Is(err, ErrAttemptTimeout) or errors.As(err, &client.Error{}) work
// on it directly.
type ClusterError struct {
	Errors []error
}

// Error returns ErrClusterUnavailable's text followed by every per-attempt error.
func (ce *ClusterError) Error() string {
	var b strings.Builder
	b.WriteString(ErrClusterUnavailable.Error())
	for i, e := range ce.Errors {
		fmt.Fprintf(&b, "; error #%d: %s", i, e)
	}
	return b.String()
}

// Detail returns every per-attempt error, one a line.
func (ce *ClusterError) Detail() string {
	var b strings.Builder
	for i, e := range ce.Errors {
		fmt.Fprintf(&b, "error #%d: %s\n", i, e)
	}
	return b.String()
}

// Unwrap returns the per-attempt errors.
func (ce *ClusterError) Unwrap() []error { return ce.Errors }

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
