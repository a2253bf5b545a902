package cache_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/cache"
)

// A runnable version against a real server is Example_cache in
// integration/discovery.
func ExampleCache() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	cfg := cache.New(client.NewKeysAPI(c), "/config",
		cache.WithDepth(2),
		cache.WithFilter(func(n *client.Node) bool { return !strings.HasSuffix(n.Key, ".tmp") }))
	events := cfg.Events(ctx) // subscribe before Run: the first listing arrives as Resync events
	go cfg.Run(ctx)
	if err := cfg.WaitSynced(ctx); err != nil {
		log.Fatal(err)
	}
	if n, ok := cfg.Get("/config/db/url"); ok {
		fmt.Println(n.Value)
	}
	for ev, err := range events {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Type, ev.Node.Key, ev.Index, ev.Resync)
	}
}
