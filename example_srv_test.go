package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcdv2/client"
)

// This example discovers the endpoints of the "prod" etcd cluster of
// example.com from the SRV records _etcd-client-ssl-prod._tcp.example.com and
// _etcd-client-prod._tcp.example.com. It needs real DNS, so it is only
// compiled.
func ExampleSRVDiscoverer() {
	d := &client.SRVDiscoverer{ServiceName: "prod"}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	endpoints, err := d.DiscoverContext(ctx, "example.com")
	if err != nil {
		var srvErr *client.SRVError
		if errors.As(err, &srvErr) {
			for i, name := range srvErr.Names {
				fmt.Printf("%s: %v\n", name, srvErr.Errs[i])
			}
			return
		}
		fmt.Println(err)
		return
	}
	for _, ep := range endpoints {
		fmt.Println(ep) // for example https://etcd1.example.com:2379
	}
}
