package discovery_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
	"github.com/etcdv2/client/events"
	"github.com/etcdv2/client/integration/testbed"
	"github.com/etcdv2/client/registry"
)

// exampleKeys starts a one-member etcd and returns a KeysAPI on it; stop
// closes the client and the server. A real program passes its members'
// client URLs to client.New.
func exampleKeys() (kapi client.KeysAPI, stop func()) {
	c, stopCluster := testbed.ExampleCluster(testbed.Options{Size: 1})
	cli, err := client.New(client.Config{Endpoints: c.ClientURLs()})
	if err != nil {
		stopCluster()
		log.Panic(err)
	}
	return client.NewKeysAPI(cli), func() { cli.Close(); stopCluster() }
}

func Example_cache() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kapi.Set(ctx, "/config/db/url", "postgres://db:5432", nil)

	c := cache.New(kapi, "/config")
	events := c.Events(ctx) // every change applied from now on
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(runCtx) }()
	if err := c.WaitSynced(ctx); err != nil {
		log.Fatal(err)
	}
	n, _ := c.Get("/config/db/url")
	fmt.Println("listed:", n.Key, "=", n.Value)

	kapi.Set(ctx, "/config/db/url", "postgres://db2:5432", nil)
	kapi.Delete(ctx, "/config/db", &client.DeleteOptions{Recursive: true})
	for ev, err := range events {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s resync=%v\n", ev.Type, ev.Node.Key, ev.Resync)
		if ev.Type == cache.Delete {
			break
		}
	}
	fmt.Println("cached nodes:", len(c.List("")))
	stopRun()
	<-done
	// Output:
	// listed: /config/db/url = postgres://db:5432
	// put /config/db resync=true
	// put /config/db/url resync=true
	// put /config/db/url resync=false
	// delete /config/db resync=false
	// cached nodes: 0
}

func Example_registry() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := registry.New(kapi, "/services")
	reg, err := r.Register(ctx, registry.Instance{Service: "api", ID: "api-1", Addr: "10.0.0.5:8080",
		Tags: []string{"v2"}, Meta: map[string]string{"zone": "a"}}, registry.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	_, err = r.Register(ctx, registry.Instance{Service: "api", ID: "api-1", Addr: "10.0.0.6:8080"})
	fmt.Println("same ID again:", err != nil)

	n := 0
	for insts, err := range r.Watch(ctx, "api", registry.PassingOnly()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("passing:", len(insts))
		if n++; n == 1 {
			reg.SetStatus(ctx, registry.Critical, "disk full")
		} else {
			break
		}
	}
	insts, _, _ := r.Instances(ctx, "api", registry.Tag("v2"))
	fmt.Println(insts[0].ID, insts[0].Addr, insts[0].Status, insts[0].Output)
	names, _ := r.Services(ctx)
	fmt.Println("services:", names)
	reg.Deregister(ctx)
	<-reg.Done()
	insts, _, _ = r.Instances(ctx, "api")
	fmt.Println("after Deregister:", len(insts))
	// Output:
	// same ID again: true
	// passing: 1
	// passing: 0
	// api-1 10.0.0.5:8080 critical disk full
	// services: [api]
	// after Deregister: 0
}

func Example_events() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ev := events.New(kapi, "/events")
	ev.Fire(ctx, "deploy", []byte("v1"))
	watch := ev.Watch(ctx, "deploy") // sees what is fired from here on
	ev.Fire(ctx, "deploy", []byte("v2"), events.WithTTL(time.Hour))
	ev.Fire(ctx, "deploy", []byte("v3"))
	n := 0
	for e, err := range watch {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("watched:", string(e.Payload))
		if n++; n == 2 {
			break
		}
	}
	list, _ := ev.List(ctx, "deploy")
	for _, e := range list {
		fmt.Println("listed:", string(e.Payload))
	}
	// Output:
	// watched: v2
	// watched: v3
	// listed: v1
	// listed: v2
	// listed: v3
}
