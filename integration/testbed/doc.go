// Package testbed runs real etcd servers, as separate OS processes on
// loopback, for the integration tests of github.com/etcdv2/client, and puts
// fault-injection TCP proxies in front of them.
//
// # Using it
//
// A test package imports the bed and lets it manage its TestMain:
//
//	func TestMain(m *testing.M) { testbed.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		c := testbed.NewCluster(t, testbed.Options{Size: 3, ProxyClients: true})
//		cli := newClient(c.ClientURLs()) // proxy URLs with ProxyClients
//		leader, err := c.Leader(ctx)
//		...
//		leader.Kill(t)                  // SIGKILL, waits for the exit
//		err = c.WaitHealthy(ctx)        // the rest elected a new leader
//		leader.Restart(t)               // same data dir and ports
//		c.Members()[1].Proxy().BlackHole(true)
//	}
//
// Main reaps etcd processes left behind by earlier killed test binaries
// (ReapLeftovers), runs the tests and then fails the binary if any
// goroutine is still running. A package with its own TestMain calls
// ReapLeftovers before m.Run, and may call LeakedGoroutines after it to
// check the goroutines this package started; none remain once every
// Cluster and Proxy is closed, which their tb.Cleanup does.
//
// Runnable Example functions, which have no testing.TB, start their
// cluster with ExampleCluster and close it with the stop function it
// returns.
//
// # The etcd binary
//
// EtcdBinary builds go.etcd.io/etcd/server/v3 (the etcd 3.5 server main
// package) with the version pinned by this module's go.mod ("tool"
// directive) and go.sum, once, into
// <os.UserCacheDir()>/etcdv2-client-testbed/<hash of go.sum, GOOS, GOARCH>/etcd
// (temporary file plus rename, under an flock so parallel test packages
// build it once). A cold build takes about a minute on 2 cores; later runs
// reuse the file. Set ETCD_BIN to use another binary, e.g.
// ETCD_BIN=/usr/bin/etcd for Debian's etcd-server 3.4. Members run with
// --enable-v2=true.
//
// Options.Version "3.6" or "3.7" starts those releases instead
// (EtcdBinaryVersion builds them the same way from the small modules in
// testbed/etcd36 and testbed/etcd37, so this module's dependencies do not
// move). They serve only the v3 API; the bed then checks health, the
// leader and member IDs through the v3 gateway. Cluster.DisableV2 and
// Cluster.Upgrade restart the members one at a time without v2 or on
// another release, for upgrade tests.
//
// # Processes
//
// Every member is its own process with its data under tb.TempDir() and its
// stdout/stderr in <member dir>/etcd.log (Member.LogPath); when a test fails,
// the cleanup prints the last lines of each member's log. Ports are picked
// at random below the kernel's ephemeral port range and probed, and a
// cluster whose member fails to bind is started again on new ports.
//
// Processes never outlive the test binary: the cleanup kills them by PID;
// they are started with Pdeathsig=SIGKILL from a goroutine locked to an OS
// thread that lives until the last of them has been reaped (Pdeathsig fires
// when the forking thread dies), so a binary killed by "go test -timeout"
// takes them along; and each PID is recorded in
// <cache dir>/etcdv2-client-testbed/pids/<test pid>.<member pid>, so that
// ReapLeftovers can kill survivors whose command line still names the
// binary.
//
// # Faults
//
//   - Member.Kill (SIGKILL), Stop (SIGSTOP: the process hangs while the
//     kernel still accepts TCP connections), Continue (SIGCONT), Restart.
//   - Cluster.AddMember and RemoveMember go through the v2 members API
//     (POST /v2/members, DELETE /v2/members/<id>) with raw HTTP.
//   - Options.ProxyClients puts a Proxy in front of every client port: delay,
//     black hole, connection reset, refused connects and answers cut right
//     after their headers (see Proxy).
//   - Options.ProxyPeers routes all peer traffic through per-member proxies,
//     so Member.Isolate can partition one member from the rest while it
//     still answers (stale) reads; see Isolate for how.
//
// # TLS
//
// Options.ClientTLS and Options.PeerTLS serve the client and the peer URLs
// over https with ECDSA certificates made in the test (crypto/x509, files
// under tb.TempDir): a CA per cluster unless TLSOptions.CA names one
// (NewCA), member certificates for 127.0.0.1, ::1 and "localhost", optional
// client-certificate authentication, any validity (expired ones included).
// Cluster.ClientTLS has the CA and a client certificate for the tests;
// Member.RotateServerCert replaces a member's certificate while it runs.
// ETCDV2_TLS=1 turns TLS on for every cluster that does not choose (see
// TLSFromEnv), so that the same tests run once more over https.
//
// # Timing
//
// Defaults are a 100 ms heartbeat and a 1 s election timeout
// (DefaultHeartbeatMS, DefaultElectionMS). A 3-member cluster is typically
// healthy within 0.3–2.5 s, a 5-member one within about 4 s, on a 2-core
// machine running the tests in parallel. Every wait is bounded by a context
// or a fixed deadline and polls at most every 50 ms.
package testbed
