package main

import (
	"strings"
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

// tlsFiles are the client's certificate, key and CA flags of the TLS
// script.
var tlsFiles = []string{"--cert-file", "{cert}", "--key-file", "{key}", "--ca-file", "{ca}"}

// tlsStep is a step of the TLS script with the client's files.
func tlsStep(args ...string) step {
	return step{args: append(append([]string{ep}, tlsFiles...), args...)}
}

// tlsScript runs key, member, cluster-health and user commands over https
// with a client certificate, then the failures: a CA that did not issue the
// members' certificates ({otherca}), no client certificate, and http to the
// TLS port ({plain}).
var tlsScript = []step{
	tlsStep("set", "/t", "1"),
	tlsStep("get", "/t"),
	tlsStep("-o", "extended", "get", "/t"),
	tlsStep("-o", "json", "get", "/t"),
	tlsStep("get", "/missing"),
	tlsStep("mk", "--in-order", "/q", "j1"),
	tlsStep("mkdir", "/d"),
	tlsStep("ls", "--sort", "--recursive", "/"),
	tlsStep("rmdir", "/d"),
	tlsStep("--no-sync", "get", "/t"),
	tlsStep("member", "list"),
	tlsStep("cluster-health"),
	tlsStep("user", "list"),
	tlsStep("user", "add", "alice:alicepw"),
	tlsStep("user", "get", "alice"),
	tlsStep("role", "list"),
	tlsStep("rm", "/t"),
	{args: []string{ep, "--cert-file", "{cert}", "--key-file", "{key}", "--ca-file", "{otherca}", "get", "/q"}},
	{args: []string{ep, "--cert-file", "{cert}", "--key-file", "{key}", "--ca-file", "{otherca}", "--no-sync", "set", "/t", "2"}},
	{args: []string{ep, "--cert-file", "{cert}", "--key-file", "{key}", "--ca-file", "{otherca}", "member", "list"}},
	{args: []string{ep, "--cert-file", "{cert}", "--key-file", "{key}", "--ca-file", "{otherca}", "cluster-health"}},
	{args: []string{ep, "--ca-file", "{ca}", "get", "/q"}},
	{args: []string{ep, "--ca-file", "{ca}", "--no-sync", "set", "/t", "2"}},
	{args: []string{ep, "--cert-file", "{cert}", "--key-file", "{key}", "get", "/q"}},
	{args: append([]string{"--endpoints", "{plain}"}, append(append([]string{}, tlsFiles...), "get", "/q")...)},
	{args: append([]string{"--endpoints", "{plain}"}, append(append([]string{}, tlsFiles...), "member", "list")...)},
}

// TestCompatTLS compares etcdctl v2 and etcdv2ctl on two fresh
// single-member clusters serving https with client-certificate
// authentication.
func TestCompatTLS(t *testing.T) {
	opts := testbed.Options{ClientTLS: &testbed.TLSOptions{ClientCertAuth: true}}
	ref, ours := newTargets(t, opts)
	other := testbed.NewCA(t, "untrusted CA")
	for _, tg := range []target{ref, ours} {
		ti := tg.cl.ClientTLS()
		tg.vars["cert"] = ti.Client.CertFile
		tg.vars["key"] = ti.Client.KeyFile
		tg.vars["ca"] = ti.CA.CertFile
		tg.vars["otherca"] = other.CertFile
		tg.vars["plain"] = strings.ReplaceAll(tg.endpoints(), "https://", "http://")
	}
	compare(t, ref, ours, tlsScript)
}
