package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/etcdv2/client"
	"github.com/urfave/cli"
	"golang.org/x/term"
)

// defaultDialTimeout bounds a TCP connect unless --total-timeout is shorter.
const defaultDialTimeout = 30 * time.Second

// errNoAvailSrc is reported when a value is neither an argument nor on
// standard input.
var errNoAvailSrc = errors.New("no available argument and stdin")

// argOrStdin returns args[i], or all of standard input when there is no
// such argument.
func (t *tool) argOrStdin(args []string, i int) (string, error) {
	if i < len(args) {
		return args[i], nil
	}
	b, err := io.ReadAll(t.stdin)
	if len(b) == 0 || err != nil {
		return "", errNoAvailSrc
	}
	return string(b), nil
}

// globalString is c.GlobalString with ETCDCTL_<NAME> as the fallback.
func (t *tool) globalString(c *cli.Context, name, env string) string {
	if v := c.GlobalString(name); v != "" {
		return v
	}
	return t.getenv(env)
}

// peers returns the endpoints given by flags or the environment, in the
// order of precedence etcdctl v2 used.
func (t *tool) peers(c *cli.Context) []string {
	s := c.GlobalString("endpoints")
	if s == "" {
		s = t.getenv("ETCDCTL_ENDPOINTS")
	}
	if s == "" {
		s = c.GlobalString("endpoint")
	}
	if s == "" {
		s = t.getenv("ETCDCTL_ENDPOINT")
	}
	if s == "" {
		s = c.GlobalString("peers")
	}
	if s == "" {
		s = t.getenv("ETCDCTL_PEERS")
	}
	if s == "" {
		s = "http://127.0.0.1:2379,http://127.0.0.1:4001"
	}
	// An empty entry (a trailing comma, say) gave etcdctl v2 an endpoint
	// "http:" that failed on its own while the others served: it is
	// left out.
	var eps []string
	for _, ep := range strings.Split(s, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	return eps
}

// discoveryDomain returns the SRV domain, whether insecure (http)
// endpoints found there are accepted, and the SRV service name suffix.
func (t *tool) discoveryDomain(c *cli.Context) (domain string, insecure bool, service string) {
	domain = t.globalString(c, "discovery-srv", "ETCDCTL_DISCOVERY_SRV")
	insecure = c.GlobalBool("insecure-discovery") || t.getenv("ETCDCTL_INSECURE_DISCOVERY") != ""
	service = t.getenv("ETCDCTL_DISCOVERY_SRV_NAME")
	return domain, insecure, service
}

// endpoints returns the endpoints found by SRV discovery, else those of
// the flags; a URL without a scheme gets http.
func (t *tool) endpoints(c *cli.Context) ([]string, error) {
	var eps []string
	domain, insecure, service := t.discoveryDomain(c)
	if domain != "" {
		d := &client.SRVDiscoverer{ServiceName: service}
		found, err := d.Discover(domain)
		if err != nil {
			return nil, err
		}
		for _, ep := range found {
			if !insecure && strings.HasPrefix(ep, "http://") {
				t.errorf("ignoring discovered insecure endpoint %q\n", ep)
				continue
			}
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		eps = t.peers(c)
	}
	for i, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil {
			return nil, endpointParseError(ep, err)
		}
		if strings.Contains(u.Opaque, "@") {
			// "user:password@host:port", read as scheme "user": no
			// endpoint, and the library's error would quote it as it is.
			return nil, endpointParseError(ep, &url.Error{Op: "parse", URL: ep, Err: client.ErrInvalidEndpoint})
		}
		if u.Scheme == "" {
			u.Scheme = "http"
		}
		eps[i] = u.String()
	}
	return eps, nil
}

// quotedRE matches what a url package error quotes of its input.
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// endpointParseError is err, the error of parsing endpoint ep, without
// its user information: the URL's is replaced by "[redacted]", and so is
// each fragment of ep the error quotes (an invalid escape, an invalid
// port) when ep has any. It works on text, since ep does not parse: the
// user information is all between "://" (or the start) and the last "@".
func endpointParseError(ep string, err error) error {
	start := 0
	if i := strings.Index(ep, "://"); i >= 0 {
		start = i + 3
	}
	at := strings.LastIndex(ep, "@")
	if at < start {
		return err
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		return errors.New("invalid endpoint " + ep[:start] + "[redacted]" + ep[at:])
	}
	return &url.Error{
		Op:  ue.Op,
		URL: ep[:start] + "[redacted]" + ep[at:],
		Err: errors.New(quotedRE.ReplaceAllString(ue.Err.Error(), `"[redacted]"`)),
	}
}

// transport builds the HTTP transport with the TLS files of the flags or
// the environment.
func (t *tool) transport(c *cli.Context) (*http.Transport, error) {
	caFile := t.globalString(c, "ca-file", "ETCDCTL_CA_FILE")
	certFile := t.globalString(c, "cert-file", "ETCDCTL_CERT_FILE")
	keyFile := t.globalString(c, "key-file", "ETCDCTL_KEY_FILE")
	domain, insecure, _ := t.discoveryDomain(c)
	if insecure {
		domain = ""
	}
	dialTimeout := defaultDialTimeout
	if tt := c.GlobalDuration("total-timeout"); tt != 0 && tt < dialTimeout {
		dialTimeout = tt
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 16,
	}
	if caFile == "" && certFile == "" && keyFile == "" && domain == "" {
		return tr, nil
	}
	cfg, err := tlsConfig(certFile, keyFile, caFile, domain)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = cfg
	return tr, nil
}

// tlsConfig is the TLS configuration of a client certificate and key (both
// or neither), a CA bundle ("" means the system's) and a server name (""
// means the endpoint's host).
func tlsConfig(certFile, keyFile, caFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, fmt.Errorf("KeyFile and CertFile must both be present[key: %v, cert: %v]", keyFile, certFile)
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("failed to load CA certificates from %s", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// selector returns the Selector named by --selector or ETCDCTL_SELECTOR;
// nil (the library's default) when none is named.
func (t *tool) selector(c *cli.Context) (client.Selector, error) {
	switch name := t.globalString(c, "selector", "ETCDCTL_SELECTOR"); name {
	case "":
		return nil, nil
	case "sticky":
		return client.Sticky(), nil
	case "random":
		return client.Random(), nil
	case "round-robin":
		return client.RoundRobin(), nil
	case "prefer-leader":
		return client.PreferLeader(nil), nil
	case "least-latency":
		return client.LeastLatency(), nil
	case "least-inflight":
		return client.LeastInFlight(), nil
	default:
		return nil, fmt.Errorf("unknown selector %q (want sticky, random, round-robin, prefer-leader, least-latency or least-inflight)", name)
	}
}

// askPassword prints prompt on standard output and reads one line from
// standard input, without echo on a terminal. Like etcdctl v2, it reads a
// piped password too, and ends the prompt with a newline.
func (t *tool) askPassword(prompt string) (string, error) {
	if prompt != "" {
		t.printf("%s", prompt)
	}
	t.stdout.Flush()
	var pw string
	var err error
	if fd := int(t.stdin.Fd()); term.IsTerminal(fd) {
		var b []byte
		b, err = term.ReadPassword(fd)
		pw = string(b)
	} else {
		pw, err = readLine(t.stdin)
	}
	t.println("")
	if err != nil {
		return "", fmt.Errorf("failed during password entry: %s", err)
	}
	return strings.TrimSpace(pw), nil
}

// readLine reads up to a newline, one byte at a time so that nothing after
// it is consumed.
func readLine(f *os.File) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := f.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			b = append(b, one[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", err
		}
	}
	return strings.TrimSuffix(string(b), "\r"), nil
}

// usernamePassword splits "user:password"; without a colon it prompts for
// the password.
func (t *tool) usernamePassword(prompt, flag string) (string, string, error) {
	user, pw, ok := strings.Cut(flag, ":")
	if ok {
		return user, pw, nil
	}
	pw, err := t.askPassword(prompt)
	if err != nil {
		return "", "", err
	}
	return user, pw, nil
}

// newClient builds a client from the global flags.
func (t *tool) newClient(c *cli.Context) (client.Client, error) {
	cfg, err := t.clientConfig(c)
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}

// clientConfig is the client configuration of the global flags.
func (t *tool) clientConfig(c *cli.Context) (client.Config, error) {
	eps, err := t.endpoints(c)
	if err != nil {
		return client.Config{}, err
	}
	tr, err := t.transport(c)
	if err != nil {
		return client.Config{}, err
	}
	sel, err := t.selector(c)
	if err != nil {
		return client.Config{}, err
	}
	timeout := c.GlobalDuration("timeout")
	t.passes.timeout = timeout
	if timeout == 0 {
		// etcdctl v2's --timeout 0 meant no per-request timeout; the
		// library's zero means an adaptive one.
		timeout = -1
	}
	cfg := client.Config{
		Transport:               tr,
		Endpoints:               eps,
		HeaderTimeoutPerRequest: timeout,
		Selector:                sel,
		Hooks:                   &t.passes,
	}
	if u := t.globalString(c, "username", "ETCDCTL_USERNAME"); u != "" {
		if pw := t.globalString(c, "password", "ETCDCTL_PASSWORD"); pw != "" && !strings.Contains(u, ":") {
			cfg.Username, cfg.Password = u, pw
		} else {
			cfg.Username, cfg.Password, err = t.usernamePassword("Password: ", u)
			if err != nil {
				return client.Config{}, err
			}
		}
	}
	return cfg, nil
}

// mustClient returns a client synced with the cluster's membership unless
// --no-sync is given; it ends the command on errors as etcdctl v2 did.
func (t *tool) mustClient(c *cli.Context) client.Client {
	cfg, err := t.clientConfig(c)
	if err != nil {
		t.errorln(err.Error())
		t.exit(exitError)
	}
	hc, err := client.New(cfg)
	if err != nil {
		t.errorln(err.Error())
		t.exit(exitError)
	}
	debug := c.GlobalBool("debug")
	if debug {
		client.EnablecURLDebug()
	}
	if !c.GlobalBool("no-sync") {
		if debug {
			t.errorf("start to sync cluster using endpoints(%s)\n", strings.Join(hc.Endpoints(), ","))
		}
		err := t.sync(c, hc, cfg)
		if err != nil {
			if errors.Is(err, client.ErrNoEndpoints) {
				t.errorf("etcd cluster has no published client endpoints.\n")
				t.errorf("Try '--no-sync' if you want to access non-published client endpoints(%s).\n", strings.Join(hc.Endpoints(), ","))
				t.handleError(c, exitServerError, err)
			}
			if isConnectionError(err) {
				t.handleError(c, exitBadConnection, err)
			}
		}
		if debug {
			t.errorf("got endpoints(%s) after sync\n", strings.Join(hc.Endpoints(), ","))
		}
	}
	if debug {
		t.errorf("Cluster-Endpoints: %s\n", strings.Join(hc.Endpoints(), ", "))
	}
	return hc
}

// sync updates hc's endpoints to the members' client URLs. As etcdctl v2's
// sync it makes one pass over the endpoints, within --total-timeout, so
// that a hung member fails it with a header timeout (which is no
// connection error, see isConnectionError) rather than with the deadline:
// hc itself may make several passes (Config.Rounds), so the sync is made
// by a client of the same configuration that makes one.
func (t *tool) sync(c *cli.Context, hc client.Client, cfg client.Config) error {
	cfg.Rounds = 1
	cfg.Hooks = nil
	sc, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer sc.Close()
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	if err := sc.Sync(ctx); err != nil {
		return err
	}
	return hc.SetEndpoints(sc.Endpoints())
}

// mustClientNoSync is mustClient without the membership sync.
func (t *tool) mustClientNoSync(c *cli.Context) client.Client {
	hc, err := t.newClient(c)
	if err != nil {
		t.errorln(err.Error())
		t.exit(exitError)
	}
	if c.GlobalBool("debug") {
		t.errorf("Cluster-Endpoints: %s\n", strings.Join(hc.Endpoints(), ", "))
		client.EnablecURLDebug()
	}
	return hc
}

// totalTimeout is a context bounded by --total-timeout.
func (t *tool) totalTimeout(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.GlobalDuration("total-timeout"))
}

// isConnectionError reports whether err means the cluster could not be
// reached at all: every endpoint refused, timed out or failed a dial or a
// read.
func isConnectionError(err error) bool {
	var ce *client.ClusterError
	if errors.As(err, &ce) {
		if len(ce.Errors) == 0 {
			return false
		}
		for _, e := range ce.Errors {
			if !isConnectionError(e) {
				return false
			}
		}
		return true
	}
	// A header timeout is not one: etcdctl v2's client reported it as a
	// plain error ("client: endpoint ... exceeded header timeout"), so a
	// sync that fails with it goes on to the command. A context deadline
	// is (a net.Error whose Timeout is true).
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// As etcdctl v2: a failed dial or read is a connection error; any
	// other operation (a TLS alert from the server, "remote error", for
	// one) is one only if its cause is.
	var op *net.OpError
	if errors.As(err, &op) {
		if op.Op == "dial" || op.Op == "read" {
			return true
		}
		return op.Err != nil && isConnectionError(op.Err)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return false
}

// compatError turns the library's error into one whose text is what
// etcdctl v2 printed for it: a cluster error lists the bare cause per
// endpoint, each followed by a newline.
type compatError struct {
	err    error
	errors []error
}

func (e *compatError) Error() string {
	s := client.ErrClusterUnavailable.Error()
	for i, err := range e.errors {
		s += fmt.Sprintf("; error #%d: %s\n", i, err)
	}
	return s
}

// Detail lists the errors per endpoint, one a line.
func (e *compatError) Detail() string {
	s := ""
	for i, err := range e.errors {
		s += fmt.Sprintf("error #%d: %s\n", i, err)
	}
	return s
}

func (e *compatError) Unwrap() error { return e.err }

// bareError strips the endpoint and URL wrappers the library adds to an
// endpoint's error, leaving the text the original client reported for it.
func bareError(endpoint string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var he *client.HTTPError
	if errors.As(err, &he) && he.StatusCode/100 == 5 {
		if he.StatusCode == http.StatusInternalServerError || he.StatusCode == http.StatusServiceUnavailable {
			return fmt.Errorf("client: etcd member %s has no leader", endpoint)
		}
		return fmt.Errorf("client: etcd member %s returns server error [%s]", endpoint, http.StatusText(he.StatusCode))
	}
	var ke client.Error
	if errors.As(err, &ke) && (ke.Code == client.ErrorCodeRaftInternal || ke.Code == client.ErrorCodeLeaderElect) {
		// Answered with HTTP 500, which the original client reported
		// as a member without a leader.
		return fmt.Errorf("client: etcd member %s has no leader", endpoint)
	}
	if errors.Is(err, client.ErrAttemptTimeout) {
		return fmt.Errorf("client: endpoint %s exceeded header timeout", endpoint)
	}
	return err
}

// compat converts err for printing: the original client reported every
// failed endpoint in a cluster error (see compatError).
func compat(err error) error {
	var ce *client.ClusterError
	if errors.As(err, &ce) {
		// The client tries the endpoints in up to three passes; the
		// original made one, so only each endpoint's first error is
		// listed.
		out := &compatError{err: err}
		seen := map[string]bool{}
		for _, e := range ce.Errors {
			var ee *client.EndpointError
			if errors.As(e, &ee) {
				if seen[ee.Endpoint] {
					continue
				}
				seen[ee.Endpoint] = true
				e = bareError(ee.Endpoint, ee.Err)
			}
			out.errors = append(out.errors, e)
		}
		return out
	}
	// The original client's auth errors were the server's message alone
	// (but for a role listing, see roleList).
	var ae *client.AuthError
	if errors.As(err, &ae) && ae.Message != "" {
		return errors.New(ae.Message)
	}
	var me *client.MemberError
	if errors.As(err, &me) {
		// Only the conflicts of add and update, and the not-found of
		// update, carried the server's message; other answers were
		// reported by status code.
		if me.Message != "" && ((me.Op == "add" && me.StatusCode == http.StatusConflict) ||
			(me.Op == "update" && (me.StatusCode == http.StatusConflict || me.StatusCode == http.StatusNotFound))) {
			return errors.New(me.Message)
		}
		return fmt.Errorf("unexpected status code %d", me.StatusCode)
	}
	var ou *client.OutcomeUnknownError
	if errors.As(err, &ou) {
		if errors.Is(ou.Err, context.DeadlineExceeded) || errors.Is(ou.Err, context.Canceled) {
			return ou.Err
		}
		return &compatError{err: err, errors: []error{bareError(ou.Endpoint, ou.Err)}}
	}
	return err
}

// compatOneShot is compat for a create (a write with prevExist=false),
// which the original client sent to one endpoint only and whose error it
// returned as it was, not as a cluster error.
func compatOneShot(err error) error {
	var ou *client.OutcomeUnknownError
	if errors.As(err, &ou) && !errors.Is(ou.Err, context.DeadlineExceeded) && !errors.Is(ou.Err, context.Canceled) {
		return bareError(ou.Endpoint, ou.Err)
	}
	var ce *client.ClusterError
	if errors.As(err, &ce) && len(ce.Errors) > 0 {
		var ee *client.EndpointError
		if errors.As(ce.Errors[0], &ee) {
			return bareError(ee.Endpoint, ee.Err)
		}
		return ce.Errors[0]
	}
	return compat(err)
}

// firstPass remembers the failed first pass over the endpoints of a call
// that made another pass and was then cut off by its deadline (see
// tool.compat). It is the client's Hooks.
type firstPass struct {
	// timeout is --timeout, etcdctl v2's header timeout per attempt.
	timeout time.Duration

	mu sync.Mutex
	// cut is the first pass's errors of the last call that ended so.
	cut *client.ClusterError
}

// passRecord is what firstPass records of one call.
type passRecord struct {
	errs []error // the endpoint errors of the first pass
	done bool    // the first pass failed at every endpoint
	// short is set when an attempt of the first pass timed out before
	// --timeout (cut short to leave time for other attempts), where
	// etcdctl v2's would have gone on.
	short bool
}

type passKey struct{}

func (p *firstPass) CallStart(ctx context.Context, _ client.CallInfo) context.Context {
	return context.WithValue(ctx, passKey{}, &passRecord{})
}

func (p *firstPass) AttemptStart(ctx context.Context, a client.AttemptInfo) context.Context {
	if rec, ok := ctx.Value(passKey{}).(*passRecord); ok && a.Round > 0 {
		// A pass after the first starts only once every endpoint failed.
		rec.done = true
	}
	return ctx
}

func (p *firstPass) AttemptEnd(ctx context.Context, a client.AttemptInfo, end client.AttemptEnd) {
	if rec, ok := ctx.Value(passKey{}).(*passRecord); ok && a.Round == 0 && end.Err != nil {
		rec.errs = append(rec.errs, &client.EndpointError{Endpoint: a.Endpoint, Err: end.Err})
		var te *client.AttemptTimeoutError
		if errors.As(end.Err, &te) && te.After < p.timeout {
			rec.short = true
		}
	}
}

func (p *firstPass) CallEnd(ctx context.Context, _ client.CallInfo, end client.CallEnd) {
	rec, ok := ctx.Value(passKey{}).(*passRecord)
	if !ok || end.Attempts == 0 || !errors.Is(end.Err, context.DeadlineExceeded) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = nil
	if rec.done && !rec.short && len(rec.errs) > 0 {
		p.cut = &client.ClusterError{Errors: rec.errs}
	}
}

// compat is compat, but a deadline that cut off a pass after a failed
// first one is reported as that first pass's errors: etcdctl v2 made one
// pass only, and reported them (a hung member's header timeout, say).
func (t *tool) compat(err error) error {
	return compat(t.firstPassError(err))
}

// firstPassError is the failed first pass of the call that err (the
// deadline) cut off in a later pass, or err.
func (t *tool) firstPassError(err error) error {
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	t.passes.mu.Lock()
	defer t.passes.mu.Unlock()
	if t.passes.cut != nil {
		return t.passes.cut
	}
	return err
}

// handleError prints err as etcdctl v2 did and ends the command with code.
func (t *tool) handleError(c *cli.Context, code int, err error) {
	err = t.firstPassError(err)
	if t.oneShot {
		err = compatOneShot(err)
	} else {
		err = compat(err)
	}
	if c.GlobalString("output") == "json" {
		var ke *client.Error
		if errors.As(err, &ke) {
			b, _ := json.Marshal(ke)
			t.errorln(string(b))
			t.exit(code)
		}
	}
	t.errorln("Error: ", err)
	if ce, ok := err.(*compatError); ok {
		t.errorln(ce.Detail())
	}
	t.exit(code)
}
