package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
)

// Watchers of one key on one client share a poll; each gets every event,
// in order, as a watcher with a poll of its own (OwnPoll) does.
func ExampleWatcherOptions_ownPoll() {
	kapi, stop := exampleCluster()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := kapi.Set(ctx, "/jobs/0", "start", nil)
	if err != nil {
		log.Fatal(err)
	}
	opts := &client.WatcherOptions{Recursive: true, AfterIndex: resp.Index}
	watchers := []client.Watcher{
		kapi.Watcher("/jobs", opts), // these two share one poll
		kapi.Watcher("/jobs", opts),
		kapi.Watcher("/jobs", &client.WatcherOptions{Recursive: true, AfterIndex: resp.Index, OwnPoll: true}),
	}
	kapi.Set(ctx, "/jobs/1", "a", nil)
	kapi.Set(ctx, "/jobs/2", "b", nil)

	for i, w := range watchers {
		for range 2 {
			ev, err := w.Next(ctx)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(i, ev.Action, ev.Node.Key, ev.Node.ModifiedIndex-resp.Index)
		}
	}
	// Output:
	// 0 set /jobs/1 1
	// 0 set /jobs/2 2
	// 1 set /jobs/1 1
	// 1 set /jobs/2 2
	// 2 set /jobs/1 1
	// 2 set /jobs/2 2
}
