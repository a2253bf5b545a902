package v3adapter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/v3adapter"
)

// A v2 program keeps its KeysAPI code; only the constructor changes. (Not
// run by go test: it needs an etcd at 127.0.0.1:2379.)
func ExampleNewKeysAPI() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	kapi := v3adapter.NewKeysAPI(cli, v3adapter.WithPrefix("/v2keys/"))
	ctx := context.Background()

	if _, err := kapi.Set(ctx, "/services/web/1", "10.0.0.1:80", &client.SetOptions{TTL: 30 * time.Second}); err != nil {
		log.Fatal(err)
	}
	_, err = kapi.Create(ctx, "/services/web/1", "again")
	fmt.Println(errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}))

	resp, err := kapi.Get(ctx, "/services", &client.GetOptions{Recursive: true, Sort: true})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range resp.Node.Nodes[0].Nodes {
		fmt.Println(n.Key, n.Value, n.TTL > 0)
	}
}

// Watch a directory from the index of a read, as with v2; a 401 means the
// revision was compacted and the program reads again.
func ExampleNewKeysAPI_watch() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	kapi := v3adapter.NewKeysAPI(cli)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r, err := kapi.Get(ctx, "/config", &client.GetOptions{Recursive: true})
	if err != nil && !client.IsKeyNotFound(err) {
		log.Fatal(err)
	}
	var after uint64
	if r != nil {
		after = r.Index
	}
	w := kapi.Watcher("/config", &client.WatcherOptions{AfterIndex: after, Recursive: true})
	for {
		ev, err := w.Next(ctx)
		if errors.Is(err, client.Error{Code: client.ErrorCodeEventIndexCleared}) {
			return // read again, then watch from the new index
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Action, ev.Node.Key, ev.Node.Value)
	}
}

// Copy a live v2 tree into the adapter's layout on the same cluster (etcd
// 3.5 with v2 enabled). Running it again resumes or refreshes the copy.
func ExampleMigrate() {
	v2, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	defer v2.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	n, err := v3adapter.Migrate(context.Background(), client.NewKeysAPI(v2), cli, v3adapter.MigrateOptions{
		Prefix: "/v2keys",
		Hidden: []string{"/_coreos.com"}, // hidden paths are not in a v2 listing
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("copied", n, "nodes")
}

// The members API keeps v2's hexadecimal member IDs.
func ExampleNewMembersAPI() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	ms, err := v3adapter.NewMembersAPI(cli).List(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range ms {
		fmt.Println(m.ID, m.Name, m.ClientURLs)
	}
}
