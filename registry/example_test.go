package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/registry"
)

// A runnable version against a real server is Example_registry in
// integration/discovery.
func ExampleRegistry() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	r := registry.New(client.NewKeysAPI(c), "/services")

	reg, err := r.Register(ctx, registry.Instance{Service: "api", ID: "api-1", Addr: "10.0.0.5:8080",
		Tags: []string{"v2"}, Meta: map[string]string{"zone": "a"}},
		registry.WithTTL(10*time.Second), registry.WithCheckTTL(30*time.Second))
	if errors.Is(err, registry.ErrExists) {
		log.Fatal("another process runs api-1: ", err)
	} else if err != nil {
		log.Fatal(err)
	}
	defer reg.Deregister(ctx)
	go func() {
		for range time.Tick(10 * time.Second) {
			if err := reg.SetStatus(ctx, registry.Passing, "ok"); errors.Is(err, registry.ErrLost) {
				return
			}
		}
	}()

	for insts, err := range r.Watch(ctx, "api", registry.Tag("v2"), registry.PassingOnly()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(insts), "healthy v2 instances")
	}
	<-reg.Done() // lost: expired, deleted, replaced, or our own deadline passed
	log.Print(reg.Err())
}
