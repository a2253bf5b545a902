package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EnvTLSVar is the environment variable that, set to "1", makes NewCluster
// serve every cluster over TLS (see TLSFromEnv) unless its Options say
// otherwise.
const EnvTLSVar = "ETCDV2_TLS"

// TLSFromEnv reports whether ETCDV2_TLS=1 is set. NewCluster then gives a
// cluster whose Options have neither ClientTLS nor PeerTLS set, nor Plain,
// TLS on both its client and peer URLs with client-certificate
// authentication, all such clusters sharing one CA and client certificate
// (EnvTLS), so that the same tests run once more over https with clients
// made from EnvTLS.
func TLSFromEnv() bool { return os.Getenv(EnvTLSVar) == "1" }

// TLSOptions configures TLS on a cluster's client or peer URLs.
// The zero value is server TLS only, with certificates from a new CA made
// for the cluster and valid from an hour ago until a day from now.
type TLSOptions struct {
	// CA issues the members' certificates and, with ClientCertAuth, is the
	// CA trusted for clients' (or peers') certificates. nil means a new CA
	// made for the cluster (one for the client URLs and, separately, one
	// for the peer URLs).
	CA *CA
	// ClientCertAuth makes the members require a certificate issued by CA
	// from clients (--client-cert-auth with --trusted-ca-file) or from
	// peers (--peer-client-cert-auth with --peer-trusted-ca-file).
	ClientCertAuth bool
	// NotBefore and NotAfter bound the validity of the members'
	// certificates; zero values mean an hour ago and a day from now. A
	// NotAfter in the past makes the members serve an expired certificate.
	NotBefore, NotAfter time.Time
}

// CA is a certificate authority made by NewCA: an ECDSA P-256 key and a
// self-signed CA certificate, written as PEM to CertFile.
type CA struct {
	// Name is the CA certificate's common name.
	Name string
	// CertFile is the path of the CA certificate (PEM), as given to
	// --trusted-ca-file or a client's CA file.
	CertFile string
	// Cert is the parsed CA certificate.
	Cert *x509.Certificate

	key    *ecdsa.PrivateKey
	dir    string
	serial atomic.Int64
}

// NewCA makes a new CA named name under tb.TempDir. Failure is fatal to tb.
func NewCA(tb testing.TB, name string) *CA {
	tb.Helper()
	ca, err := newCA(tb.TempDir(), name)
	if err != nil {
		tb.Fatalf("testbed: NewCA: %v", err)
	}
	return ca
}

func newCA(parent, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"etcdv2 testbed"}},
		// Valid long before and after any leaf a test makes, expired
		// ones included.
		NotBefore:             now.Add(-365 * 24 * time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "ca-")
	if err != nil {
		return nil, err
	}
	ca := &CA{Name: name, Cert: cert, key: key, dir: dir, CertFile: filepath.Join(dir, "ca.pem")}
	ca.serial.Store(1)
	if err := writeFileAtomic(ca.CertFile, ca.CertPEM()); err != nil {
		return nil, err
	}
	return ca, nil
}

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool returns a new pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertSpec describes a certificate for CA.Issue. The zero value is a
// certificate valid for both server and client authentication, for
// 127.0.0.1, ::1 and localhost, from an hour ago until a day from now.
type CertSpec struct {
	// CommonName is the subject's common name; "" means "testbed".
	CommonName string
	// ClientOnly limits the certificate to client authentication and
	// gives it no names (SANs).
	ClientOnly bool
	// DNSNames and IPs are the subject alternative names; both nil mean
	// "localhost", 127.0.0.1 and ::1 (ignored with ClientOnly).
	DNSNames []string
	IPs      []net.IP
	// NotBefore and NotAfter bound the validity; zero means an hour ago
	// and a day from now.
	NotBefore, NotAfter time.Time
}

// KeyPair is a certificate and its key as PEM files.
type KeyPair struct {
	// CertFile and KeyFile are the paths of the certificate and of its
	// (unencrypted PKCS #8) key.
	CertFile, KeyFile string
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// CertPEM and KeyPEM are the files' contents.
	CertPEM, KeyPEM []byte
}

// TLSCertificate returns the pair for tls.Config.Certificates.
func (kp KeyPair) TLSCertificate() tls.Certificate {
	c, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		panic(err) // made by Issue: cannot happen
	}
	return c
}

// Issue makes a certificate signed by ca and writes it to new files under
// ca's directory. Failure is fatal to tb.
func (ca *CA) Issue(tb testing.TB, spec CertSpec) KeyPair {
	tb.Helper()
	kp, err := ca.issueNew(spec)
	if err != nil {
		tb.Fatalf("testbed: Issue: %v", err)
	}
	return kp
}

func (ca *CA) issueNew(spec CertSpec) (KeyPair, error) {
	kp, err := ca.issue(spec)
	if err != nil {
		return kp, err
	}
	n := ca.serial.Load()
	kp.CertFile = filepath.Join(ca.dir, fmt.Sprintf("leaf-%d.pem", n))
	kp.KeyFile = filepath.Join(ca.dir, fmt.Sprintf("leaf-%d-key.pem", n))
	return kp, kp.write()
}

// IssueTo is Issue writing to the given files, each replaced atomically
// (written aside, then renamed over), certificate first: use it to rotate
// the files a member or a client reads.
func (ca *CA) IssueTo(tb testing.TB, spec CertSpec, certFile, keyFile string) KeyPair {
	tb.Helper()
	kp, err := ca.issue(spec)
	if err != nil {
		tb.Fatalf("testbed: Issue: %v", err)
	}
	kp.CertFile, kp.KeyFile = certFile, keyFile
	if err := kp.write(); err != nil {
		tb.Fatalf("testbed: Issue: %v", err)
	}
	return kp
}

func (kp KeyPair) write() error {
	if err := writeFileAtomic(kp.CertFile, kp.CertPEM); err != nil {
		return err
	}
	return writeFileAtomic(kp.KeyFile, kp.KeyPEM)
}

func (ca *CA) issue(spec CertSpec) (KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return KeyPair{}, err
	}
	now := time.Now()
	if spec.NotBefore.IsZero() {
		spec.NotBefore = now.Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = now.Add(24 * time.Hour)
	}
	if spec.CommonName == "" {
		spec.CommonName = "testbed"
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: spec.CommonName, Organization: []string{"etcdv2 testbed"}},
		NotBefore:    spec.NotBefore,
		NotAfter:     spec.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	if spec.ClientOnly {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		// Members use one certificate both to serve and, on the peer
		// URLs, to dial each other.
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.DNSNames, tmpl.IPAddresses = spec.DNSNames, spec.IPs
		if spec.DNSNames == nil && spec.IPs == nil {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return KeyPair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyPair{}, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}),
	}, nil
}

// writeFileAtomic writes b to a temporary file beside path and renames it
// over path, so that a reader sees the old or the new content, never a
// part.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

// ClientTLSInfo is what a client needs to talk to a cluster's TLS client
// URLs: the CA that issued the members' certificates and a client
// certificate issued by the CA the members trust for clients.
type ClientTLSInfo struct {
	// CA issued the members' client-URL certificates; its CertFile is the
	// file to trust.
	CA *CA
	// Client is a client certificate (common name "testbed-client", not a
	// user name of any test) issued by CA.
	Client KeyPair
}

// Config returns a tls.Config trusting CA and presenting Client, for raw
// HTTP clients.
func (i *ClientTLSInfo) Config() *tls.Config {
	return &tls.Config{RootCAs: i.CA.Pool(), Certificates: []tls.Certificate{i.Client.TLSCertificate()}}
}

// setupTLS resolves opts' TLS settings (ETCDV2_TLS included) and makes
// the CAs and the client certificate.
func setupTLS(tb testing.TB, opts *Options) {
	if !opts.Plain && opts.ClientTLS == nil && opts.PeerTLS == nil && TLSFromEnv() {
		info := EnvTLS()
		if info == nil {
			tb.Fatalf("testbed: %s=1: %v", EnvTLSVar, envTLS.err)
		}
		opts.ClientTLS = &TLSOptions{CA: info.CA, ClientCertAuth: true}
		opts.PeerTLS = &TLSOptions{CA: info.CA, ClientCertAuth: true}
	}
	if opts.ClientTLS != nil {
		o := *opts.ClientTLS
		if o.CA == nil {
			o.CA = NewCA(tb, "testbed client CA")
		}
		opts.ClientTLS = &o
	}
	if opts.PeerTLS != nil {
		o := *opts.PeerTLS
		if o.CA == nil {
			o.CA = NewCA(tb, "testbed peer CA")
		}
		opts.PeerTLS = &o
	}
}

// ClientTLS returns the TLS material for clients of a cluster serving its
// client URLs over https (Options.ClientTLS, or ETCDV2_TLS=1), or nil for
// a plain http cluster.
func (c *Cluster) ClientTLS() *ClientTLSInfo { return c.tlsInfo }

// TLSConfig returns ClientTLS().Config(), or nil for a plain http cluster.
func (c *Cluster) TLSConfig() *tls.Config {
	if c.tlsInfo == nil {
		return nil
	}
	return c.tlsInfo.Config()
}

func (c *Cluster) clientScheme() string {
	if c.opts.ClientTLS != nil {
		return "https"
	}
	return "http"
}

func (c *Cluster) peerScheme() string {
	if c.opts.PeerTLS != nil {
		return "https"
	}
	return "http"
}

// bedTransportTLS is the TLS configuration of the bed's own health and
// admin requests: it trusts the cluster's CA whatever the certificates'
// validity (a test may serve expired ones on purpose) and presents the
// client certificate.
func bedTransportTLS(info *ClientTLSInfo) *tls.Config {
	pool := info.CA.Pool()
	return &tls.Config{
		Certificates:       []tls.Certificate{info.Client.TLSCertificate()},
		InsecureSkipVerify: true, // verified below, at the middle of the leaf's validity
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return fmt.Errorf("testbed: no server certificate")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			mid := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: mid, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		},
	}
}

// setupTLS writes the member's certificates (one for the client URLs, one
// for the peer URLs) into dir.
func (m *Member) setupTLS(tb testing.TB, dir string) {
	o := m.c.opts
	if o.ClientTLS != nil {
		m.serverCert = o.ClientTLS.CA.IssueTo(tb, CertSpec{CommonName: m.name, NotBefore: o.ClientTLS.NotBefore, NotAfter: o.ClientTLS.NotAfter},
			filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	}
	if o.PeerTLS != nil {
		m.peerCert = o.PeerTLS.CA.IssueTo(tb, CertSpec{CommonName: m.name, NotBefore: o.PeerTLS.NotBefore, NotAfter: o.PeerTLS.NotAfter},
			filepath.Join(dir, "peer.pem"), filepath.Join(dir, "peer-key.pem"))
	}
}

// tlsArgs returns the member's TLS command-line flags.
func (m *Member) tlsArgs() []string {
	o := m.c.opts
	var args []string
	if t := o.ClientTLS; t != nil {
		args = append(args, "--cert-file="+m.serverCert.CertFile, "--key-file="+m.serverCert.KeyFile)
		if t.ClientCertAuth {
			args = append(args, "--client-cert-auth=true", "--trusted-ca-file="+t.CA.CertFile)
		}
	}
	if t := o.PeerTLS; t != nil {
		args = append(args, "--peer-cert-file="+m.peerCert.CertFile, "--peer-key-file="+m.peerCert.KeyFile,
			// Members dial each other over loopback and check the names.
			"--peer-trusted-ca-file="+t.CA.CertFile)
		if t.ClientCertAuth {
			args = append(args, "--peer-client-cert-auth=true")
		}
	}
	return args
}

// ServerCert returns the certificate the member serves on its client URL
// (Options.ClientTLS), or a zero KeyPair.
func (m *Member) ServerCert() KeyPair { return m.serverCert }

// RotateServerCert replaces the member's client-URL certificate and key
// files with a new certificate from ca (nil: the cluster's client CA) per
// spec. etcd reads them again for every new TLS connection, so new
// connections get the new certificate without a restart, while open ones
// keep the old.
func (m *Member) RotateServerCert(tb testing.TB, ca *CA, spec CertSpec) KeyPair {
	tb.Helper()
	if m.c.opts.ClientTLS == nil {
		tb.Fatalf("testbed: RotateServerCert needs Options.ClientTLS")
	}
	if ca == nil {
		ca = m.c.opts.ClientTLS.CA
	}
	if spec.CommonName == "" {
		spec.CommonName = m.name
	}
	kp := ca.IssueTo(tb, spec, m.serverCert.CertFile, m.serverCert.KeyFile)
	m.serverCert = kp
	return kp
}

// envTLS is the TLS material shared by every cluster started because of
// ETCDV2_TLS=1, made on first use in a directory that Main removes.
var envTLS struct {
	once sync.Once
	dir  string
	info *ClientTLSInfo
	err  error
}

// EnvTLS returns the CA and client certificate shared by every cluster
// that NewCluster serves over TLS because of ETCDV2_TLS=1, so that a test
// helper can make a TLS client without knowing the cluster; nil when
// ETCDV2_TLS is not 1 (or the files could not be made, which NewCluster
// then reports).
func EnvTLS() *ClientTLSInfo {
	if !TLSFromEnv() {
		return nil
	}
	envTLS.once.Do(func() {
		envTLS.dir, envTLS.err = os.MkdirTemp("", "etcdv2-testbed-tls-")
		if envTLS.err != nil {
			return
		}
		var ca *CA
		if ca, envTLS.err = newCA(envTLS.dir, "testbed client and peer CA"); envTLS.err != nil {
			return
		}
		var kp KeyPair
		if kp, envTLS.err = ca.issueNew(CertSpec{CommonName: "testbed-client", ClientOnly: true}); envTLS.err != nil {
			return
		}
		envTLS.info = &ClientTLSInfo{CA: ca, Client: kp}
	})
	return envTLS.info
}

// EnvTLSConfig returns EnvTLS().Config(), or nil when ETCDV2_TLS is not 1.
func EnvTLSConfig() *tls.Config {
	if i := EnvTLS(); i != nil {
		return i.Config()
	}
	return nil
}

// removeEnvTLS removes EnvTLS's files, if any were made.
func removeEnvTLS() {
	if envTLS.dir != "" {
		os.RemoveAll(envTLS.dir)
	}
}

// clusterClientTLS returns the client TLS material of a cluster: EnvTLS's
// when the cluster uses its CA, else a new client certificate.
func clusterClientTLS(tb testing.TB, opts Options) *ClientTLSInfo {
	if env := EnvTLS(); env != nil && opts.ClientTLS.CA == env.CA {
		return env
	}
	return &ClientTLSInfo{CA: opts.ClientTLS.CA, Client: opts.ClientTLS.CA.Issue(tb, CertSpec{CommonName: "testbed-client", ClientOnly: true})}
}
