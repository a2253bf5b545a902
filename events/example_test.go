package events_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/events"
)

// A runnable version against a real server is Example_events in
// integration/discovery.
func ExampleEvents() {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	ev := events.New(client.NewKeysAPI(c), "/events")

	watch := ev.Watch(ctx, "deploy") // fixes the point after which events are delivered
	id, err := ev.Fire(ctx, "deploy", []byte("v1.2.3"), events.WithTTL(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("fired", id)
	for e, err := range watch {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Index, e.ID, string(e.Payload))
	}
}
