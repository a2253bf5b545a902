// Command tour walks a newcomer through the etcd v2 keys API with the Go
// client github.com/etcdv2/client, printing what each call does and what the
// server answered. From the repository root:
//
//	go run -C examples/tour .
//
// With no endpoints it starts a private etcd inside the process (embed.go)
// and throws it away at the end. To use a running cluster instead, pass
// -endpoints http://host:2379,... (or set ETCDCTL_ENDPOINTS); the tour then
// works below a unique prefix /tour-<random> and deletes it when done.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/etcdv2/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Stdout, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tour failed:", err)
		os.Exit(1)
	}
}

// run is the whole tour; main and the test call it.
func run(ctx context.Context, out io.Writer, args []string) (err error) {
	flags := flag.NewFlagSet("tour", flag.ContinueOnError)
	endpoints := flags.String("endpoints", os.Getenv("ETCDCTL_ENDPOINTS"),
		"comma-separated etcd client URLs (default $ETCDCTL_ENDPOINTS); empty: start a private etcd")
	if err := flags.Parse(args); err != nil {
		return err
	}
	started := time.Now()
	// Every call and every wait below uses this context: nothing can hang.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	var eps []string
	for _, e := range strings.Split(*endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	prefix := "/tour-" + randomSuffix() // our own corner of a shared cluster
	if len(eps) == 0 {
		fmt.Fprintln(out, "No endpoints given: starting a private etcd server for this tour.")
		srv, err := startEmbedded(15 * time.Second)
		if err != nil {
			return err
		}
		defer func() { srv.Stop(); fmt.Fprintln(out, "Stopped the private etcd server.") }()
		eps = []string{srv.Endpoint}
		prefix = "/tour" // the server is ours alone
	}

	// A Client knows the cluster; a KeysAPI on top of it reads and writes keys.
	c, err := client.New(client.Config{Endpoints: eps})
	if err != nil {
		return err
	}
	defer c.Close()
	kapi := client.NewKeysAPI(c)
	v, err := c.GetVersion(ctx)
	if err != nil {
		return fmt.Errorf("cannot reach etcd at %v: %w", eps, err)
	}
	fmt.Fprintf(out, "Connected to etcd %s at %s; all keys of this tour live below %s.\n",
		v.Server, strings.Join(eps, ","), prefix)

	// Leave the cluster as we found it, even after a failure or Ctrl-C.
	defer func() {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer ccancel()
		_, derr := kapi.Delete(cctx, prefix, &client.DeleteOptions{Recursive: true})
		if derr != nil && !client.IsKeyNotFound(derr) && err == nil {
			err = fmt.Errorf("cleaning up %s: %w", prefix, derr)
		}
		if derr == nil {
			fmt.Fprintf(out, "\nCleaned up: deleted %s and everything below it.\n", prefix)
		}
	}()

	t := &tour{ctx: ctx, out: out, kapi: kapi, prefix: prefix}
	steps := []struct {
		title string
		run   func() error
	}{
		{"Set and get", t.setAndGet},
		{"Compare-and-swap", t.compareAndSwap},
		{"Create", t.create},
		{"TTL: keys that expire", t.ttl},
		{"In-order keys", t.inOrder},
		{"Recursive listing", t.tree},
		{"Watch", t.watch},
	}
	for i, s := range steps {
		fmt.Fprintf(out, "\n== %d. %s ==\n", i+1, s.title)
		if err := s.run(); err != nil {
			return fmt.Errorf("step %q: %w", s.title, err)
		}
	}
	fmt.Fprintf(out, "\nAll %d steps done in %v.\n", len(steps), time.Since(started).Round(time.Millisecond))
	return nil
}

// tour holds what every step needs.
type tour struct {
	ctx    context.Context
	out    io.Writer
	kapi   client.KeysAPI
	prefix string
}

func (t *tour) say(format string, args ...any) { fmt.Fprintf(t.out, format+"\n", args...) }

func (t *tour) setAndGet() error {
	key := t.prefix + "/greeting"
	resp, err := t.kapi.Set(t.ctx, key, "hello", nil)
	if err != nil {
		return err
	}
	t.say("Set %s to %q: action %q, modifiedIndex %d.", key, resp.Node.Value, resp.Action, resp.Node.ModifiedIndex)
	t.say("  Every change takes the next number of one cluster-wide counter, the etcd index.")
	if resp, err = t.kapi.Get(t.ctx, key, nil); err != nil {
		return err
	}
	t.say("Get %s: value %q, createdIndex %d, modifiedIndex %d.", key, resp.Node.Value, resp.Node.CreatedIndex, resp.Node.ModifiedIndex)
	_, err = t.kapi.Get(t.ctx, t.prefix+"/no-such-key", nil)
	if !client.IsKeyNotFound(err) {
		return fmt.Errorf("want a key-not-found error, got %v", err)
	}
	t.say("Get of a missing key fails with %v;\n  client.IsKeyNotFound(err) is true.", err)
	return nil
}

func (t *tour) compareAndSwap() error {
	key := t.prefix + "/greeting"
	resp, err := t.kapi.Set(t.ctx, key, "hello, world", &client.SetOptions{PrevValue: "hello"})
	if err != nil {
		return err
	}
	t.say("Set %s to %q only if it is still %q: done, action %q (was %q).",
		key, resp.Node.Value, "hello", resp.Action, resp.PrevNode.Value)

	// The same swap again: the value is no longer "hello", so it must fail.
	_, err = t.kapi.Set(t.ctx, key, "bonjour", &client.SetOptions{PrevValue: "hello"})
	var etcdErr client.Error
	if !errors.Is(err, client.Error{Code: client.ErrorCodeTestFailed}) || !errors.As(err, &etcdErr) {
		return fmt.Errorf("want error %d, got %v", client.ErrorCodeTestFailed, err)
	}
	t.say("The same swap again fails: error %d %q, cause %q.", etcdErr.Code, etcdErr.Message, etcdErr.Cause)
	t.say("  Test for it with errors.Is(err, client.Error{Code: client.ErrorCodeTestFailed}),\n  or errors.As(err, &e) with e a client.Error to read e.Code and e.Cause.")

	// Comparing modifiedIndex instead of the value also catches A-B-A changes.
	if resp, err = t.kapi.Set(t.ctx, key, "hi", &client.SetOptions{PrevIndex: resp.Node.ModifiedIndex}); err != nil {
		return err
	}
	t.say("Set to %q only if modifiedIndex is still %d: done, now at index %d.", resp.Node.Value, resp.PrevNode.ModifiedIndex, resp.Node.ModifiedIndex)
	return nil
}

func (t *tour) create() error {
	key := t.prefix + "/lock"
	resp, err := t.kapi.Create(t.ctx, key, "owner-1")
	if err != nil {
		return err
	}
	t.say("Create %s = %q: action %q. Create succeeds only if the key does not exist yet.", key, resp.Node.Value, resp.Action)
	_, err = t.kapi.Create(t.ctx, key, "owner-2")
	if !errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}) {
		return fmt.Errorf("want error %d, got %v", client.ErrorCodeNodeExist, err)
	}
	t.say("Create it again: %v\n  errors.Is(err, client.Error{Code: client.ErrorCodeNodeExist}) is true: someone else holds it.", err)
	return nil
}

func (t *tour) ttl() error {
	key := t.prefix + "/session"
	resp, err := t.kapi.Set(t.ctx, key, "alive", &client.SetOptions{TTL: time.Second})
	if err != nil {
		return err
	}
	t.say("Set %s = %q with a TTL of 1s: ttl %d, expiration %s.", key, resp.Node.Value, resp.Node.TTL,
		resp.Node.Expiration.Format("15:04:05.000"))
	// Wait for the expiry with a watch, not a sleep: the server sends an
	// "expire" event when it removes the key (it checks every 500 ms).
	w := t.kapi.Watcher(key, &client.WatcherOptions{AfterIndex: resp.Node.ModifiedIndex})
	wctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	ev, err := w.Next(wctx)
	if err != nil {
		return fmt.Errorf("waiting for the expiry: %w", err)
	}
	if ev.Action != "expire" {
		return fmt.Errorf("want an expire event, got %q", ev.Action)
	}
	t.say("A watch on the key reported action %q at index %d after %v (the old value was %q).",
		ev.Action, ev.Node.ModifiedIndex, time.Since(start).Round(10*time.Millisecond), ev.PrevNode.Value)
	if _, err = t.kapi.Get(t.ctx, key, nil); !client.IsKeyNotFound(err) {
		return fmt.Errorf("want the key gone, got %v", err)
	}
	t.say("Get %s now fails with key not found.", key)
	return nil
}

func (t *tour) inOrder() error {
	dir := t.prefix + "/queue"
	for _, job := range []string{"first job", "second job", "third job"} {
		resp, err := t.kapi.CreateInOrder(t.ctx, dir, job, nil)
		if err != nil {
			return err
		}
		t.say("CreateInOrder in %s: the server named the new key %s.", dir, resp.Node.Key)
	}
	resp, err := t.kapi.Get(t.ctx, dir, &client.GetOptions{Sort: true})
	if err != nil {
		return err
	}
	t.say("The names are etcd indexes, zero-padded, so a sorted listing is the creation order:")
	for _, n := range resp.Node.Nodes {
		t.say("  %s  %q", path.Base(n.Key), n.Value)
	}
	return nil
}

func (t *tour) tree() error {
	for _, kv := range [][2]string{
		{"config/app/name", "tour"}, {"config/app/debug", "false"},
		{"config/db/host", "127.0.0.1"}, {"config/db/port", "5432"},
	} {
		// Parent directories are created as needed.
		if _, err := t.kapi.Set(t.ctx, t.prefix+"/"+kv[0], kv[1], nil); err != nil {
			return err
		}
	}
	resp, err := t.kapi.Get(t.ctx, t.prefix+"/config", &client.GetOptions{Recursive: true, Sort: true})
	if err != nil {
		return err
	}
	t.say("Set four keys below %s/config, then one Get with Recursive and Sort returns the tree:", t.prefix)
	printTree(t.out, resp.Node, "  ")
	return nil
}

// printTree prints a node and, for a directory, its children indented below it.
func printTree(out io.Writer, n *client.Node, indent string) {
	if !n.Dir {
		fmt.Fprintf(out, "%s%s = %q\n", indent, path.Base(n.Key), n.Value)
		return
	}
	fmt.Fprintf(out, "%s%s/\n", indent, path.Base(n.Key))
	for _, child := range n.Nodes {
		printTree(out, child, indent+"  ")
	}
}

func (t *tour) watch() error {
	key := t.prefix + "/status"
	resp, err := t.kapi.Set(t.ctx, key, "starting", nil)
	if err != nil {
		return err
	}
	// Watch from the index of that write: the watcher sees every later change,
	// even one made before its first request reaches the server.
	after := resp.Node.ModifiedIndex
	t.say("Set %s = %q at index %d; a goroutine now watches it from there.", key, resp.Node.Value, after)

	wctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // the goroutine never outlives this step
	events, errc := make(chan *client.Response, 2), make(chan error, 1)
	w := t.kapi.Watcher(key, &client.WatcherOptions{AfterIndex: after})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2 {
			ev, err := w.Next(wctx) // blocks until the next change of the key
			if err != nil {
				errc <- err
				return
			}
			events <- ev
		}
	}()

	for _, value := range []string{"running", "done"} {
		if _, err := t.kapi.Set(t.ctx, key, value, nil); err != nil {
			return err
		}
	}
	t.say("Changed it twice. The watcher reported:")
	var got []*client.Response
	for len(got) < 2 {
		select {
		case ev := <-events:
			got = append(got, ev)
			t.say("  %s %s = %q (was %q), modifiedIndex %d", ev.Action, ev.Node.Key, ev.Node.Value, ev.PrevNode.Value, ev.Node.ModifiedIndex)
		case err := <-errc:
			return fmt.Errorf("watching: %w", err)
		}
	}

	// To resume after a restart or a lost connection, remember the
	// modifiedIndex of the last event handled: a watcher with AfterIndex set
	// to it asks the server for waitIndex = modifiedIndex+1, and the server
	// replays from its history of the last 1000 events what came after it.
	last := got[0].Node.ModifiedIndex
	ev, err := t.kapi.Watcher(key, &client.WatcherOptions{AfterIndex: last}).Next(wctx)
	if err != nil {
		return fmt.Errorf("resuming: %w", err)
	}
	t.say("Resuming with AfterIndex %d (waitIndex %d) replays the next change: %q at modifiedIndex %d.",
		last, last+1, ev.Node.Value, ev.Node.ModifiedIndex)
	return nil
}

// randomSuffix returns 8 random hex digits.
func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
