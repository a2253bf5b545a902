package client_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/etcdv2/client"
)

// A client of a cluster serving https and requiring client certificates,
// with the files etcdctl takes as --cert-file, --key-file and --ca-file.
func ExampleNewTLSTransport() {
	tr, err := client.NewTLSTransport(client.TLSInfo{
		CertFile:      "/etc/etcd/client.pem",
		KeyFile:       "/etc/etcd/client-key.pem",
		TrustedCAFile: "/etc/etcd/ca.pem",
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(client.Config{
		Endpoints: []string{"https://etcd-0.example.com:2379", "https://etcd-1.example.com:2379"},
		Transport: tr,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = client.NewKeysAPI(c).Get(ctx, "/config", nil)
	var te *client.TLSError
	if errors.As(err, &te) {
		// For example "the member's certificate is signed by an unknown
		// authority"; err's message also says what to change.
		log.Fatalf("TLS with %s: %v", te.Endpoint, te.Problem)
	}
}
