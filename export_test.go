package client

import "net/http"

// NewFakeV2ForExamples returns the in-memory v2 server of the tests, for
// the runnable examples of package client_test.
func NewFakeV2ForExamples() http.Handler { return newFakeV2() }
