// Package client is a client for the etcd v2 API (etcd 2.x, and 3.x up to
// 3.5 with --enable-v2), compatible with the archived official v2 client:
// code written for that package compiles and behaves the same after its
// import path is changed to this one, with stdlib context.
//
// # Construction
//
// Create a Config and exchange it for a Client, then build the API you need
// on top of it:
//
//	c, err := client.New(client.Config{
//		Endpoints: []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"},
//	})
//	if err != nil {
//		// the configuration is invalid; nothing was sent
//	}
//	defer c.Close()
//	kapi := client.NewKeysAPI(c)
//
// A Client is safe for concurrent use and should be shared. Close ends its
// background work (AutoSync loops, leader look-ups, health probes) and its
// connections.
//
// # Failover
//
// Each call is one logical request. The client sends it to one endpoint,
// chosen by the Selector (by default the Sticky policy: one pinned endpoint
// per client, picked at random), and, when that endpoint fails, to the
// next one, each at most once. An attempt fails when the connection fails,
// when no response headers come within the per-attempt timeout
// (Config.HeaderTimeoutPerRequest, on by default, so a hung member costs
// one timeout and not the caller's deadline; a member that still answers a
// liveness check is merely busy, with a large listing or a raft election,
// and is waited for), when the body stalls, or when the member answers
// with a 5xx error such as a raft timeout. When every endpoint failed, the
// call returns a *ClusterError: its Errors hold one error per endpoint, as
// the original client's did, and its Attempts name the endpoint of every
// attempt.
//
// Reads and watches are always safe to send again. A write is sent again
// to another member only when it provably never left the client (the
// connection was refused, say). A write (a Set, a create, a
// compare-and-swap, an in-order create, a delete) whose request may have
// reached a server without a definite answer returns an error matching
// ErrOutcomeUnknown instead: the write may or may not have been applied,
// and a blind resend could apply it twice (even an unconditional Set: a
// second apply moves the index again, fires watchers again and can
// overwrite a newer value; Config.ResendUnconditionalSets allows it for
// Sets). Once such a write has been sent it has nowhere else to go, so it
// is given the whole of the caller's deadline. Errors that every attempt
// would meet again (a refusal by Config.CheckRedirect, too many redirects,
// a redirect to another origin, a server certificate that fails
// verification) end the call at once.
//
// # Selection and health
//
// Config.Selector picks the endpoint of each attempt among the candidates
// the client offers: the endpoints not yet tried for the request and not
// ejected. Built-in policies are Sticky (the default, as the original
// client: one pinned endpoint, rebalanced now and then), Random,
// RoundRobin, PreferLeader, LeastLatency, LeastInFlight and AvoidStale; a
// SelectorFunc is a policy of your own. Whatever the policy, the client
// ejects an endpoint at once when a connection to it is refused and after
// repeated timeouts or "no leader" answers, keeps it out for a growing,
// jittered time, and probes it in the background to readmit it (see
// EjectionConfig). Requests make up to Config.Rounds passes over the endpoints,
// with a short jittered pause between passes, within a retry budget.
// StatsReporter exposes the counters; Config.Hooks is told of every call
// and attempt, for metrics and tracing (the module
// github.com/etcdv2/client/observability adapts both to Prometheus and
// OpenTelemetry).
//
// # Watches
//
// A Watcher long-polls the server for the next event after its cursor. It
// moves the cursor to an event's modifiedIndex+1 and keeps it after a poll
// that ended without an event (only a first poll sent without a cursor
// resumes after the index its headers carry). When the member it polls
// fails, hangs (it probes it while polling) or is ejected, the next poll
// goes to another member with the same cursor, so no event is lost or
// repeated. Error 401
// (ErrorCodeEventIndexCleared: the server keeps only the last 1000 events)
// is returned to the caller: Get the key again and watch from the
// Response's Index. Events ranges over a Watcher.
//
// # Errors
//
//   - A call whose context is cancelled or expires returns exactly
//     ctx.Err().
//   - An etcd error answer of the keys API is an Error; it matches any Error
//     with the same Code under errors.Is, and err.(client.Error) also works.
//   - *ClusterError matches ErrClusterUnavailable, and errors.Is / errors.As
//     look into each attempt (*EndpointError, ErrAttemptTimeout,
//     *net.OpError, ...).
//   - Error() gives the original client's text for the same failure (a
//     ClusterError's entries, the members and auth APIs' messages); the
//     typed errors say more with errors.Is, errors.As and their Detail.
//   - A write whose outcome is unknown gives an error matching
//     ErrOutcomeUnknown: an *OutcomeUnknownError, which wraps the cause, by
//     itself for a create or an in-order create, else inside a
//     *ClusterError (as the original client returned for the same
//     failures).
//   - An endpoint of another etcd cluster (its X-Etcd-Cluster-Id differs from
//     the one the client saw first) gives a *ClusterIDMismatchError and is
//     never used silently; a write that cannot be resent is only sent to an
//     endpoint already seen answering for the cluster.
//
// # Consistency
//
// A plain read is answered by the member that gets it, from its own copy of
// the data, which can lag behind (a member cut off from its peers keeps
// answering reads with old data). A quorum read (GetOptions.Quorum) goes
// through raft and is linearizable, at the cost of a round of consensus.
package client
