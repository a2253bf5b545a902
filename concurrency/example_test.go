package concurrency_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
)

// These examples are compiled but not run, since this module cannot start
// an etcd server; runnable versions with their output, on a real etcd, are
// in integration/recipes/example_test.go in the repository.

// keysAPI connects to a local etcd serving the v2 API.
func keysAPI() client.KeysAPI {
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379"}})
	if err != nil {
		log.Fatal(err)
	}
	return client.NewKeysAPI(c)
}

// A session renews the keys written through it; Done tells when they may
// be gone.
func ExampleNewSession() {
	kapi := keysAPI()
	s, err := concurrency.NewSession(kapi, concurrency.WithTTL(15*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println("session", s.ID(), "TTL", s.TTL())
	select {
	case <-s.Done():
		fmt.Println("lost: stop acting on what the session held")
	default:
	}
}

// Lock, act through a fenced resource with the lock's token, unlock.
func ExampleMutex() {
	kapi := keysAPI()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	m := concurrency.NewMutex(s, "/locks/db")
	if err := m.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	// The token makes a write by a holder that lost the lock (paused past
	// its TTL) harmless: the resource refuses it once a later holder wrote.
	_, err = concurrency.FencedSet(ctx, kapi, "/db/schema-version", "42", m.Token())
	if errors.Is(err, concurrency.ErrStaleToken) {
		fmt.Println("someone holds the lock now; not writing")
	}
	if err := m.Unlock(ctx); err != nil {
		log.Println("unlock:", err)
	}
}

// TryLock gives up at once when the lock is taken.
func ExampleMutex_TryLock() {
	kapi := keysAPI()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	m := concurrency.NewMutex(s, "/locks/report")
	switch err := m.TryLock(context.Background()); {
	case errors.Is(err, concurrency.ErrLocked):
		fmt.Println("another process is writing the report")
	case err != nil:
		log.Fatal(err)
	default:
		defer m.Unlock(context.Background())
		fmt.Println("writing the report with token", m.Token())
	}
}

// Campaign blocks until elected; the leader proclaims a new value, then
// resigns.
func ExampleElection() {
	kapi := keysAPI()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	e := concurrency.NewElection(s, "/election/svc")
	if err := e.Campaign(ctx, "10.0.0.1:8080"); err != nil {
		log.Fatal(err)
	}
	l, err := e.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leading as", l.Value, "term", l.Token)
	if err := e.Proclaim(ctx, "10.0.0.1:9090"); err != nil {
		log.Fatal(err)
	}
	if err := e.Resign(ctx); err != nil {
		log.Fatal(err)
	}
}

// Observe follows every change of leader.
func ExampleElection_Observe() {
	kapi := keysAPI()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for l, err := range concurrency.NewElection(s, "/election/svc").Observe(ctx) {
		if err != nil {
			fmt.Println("observe ended:", err)
			break
		}
		fmt.Println("leader is now", l.Value, "term", l.Token)
	}
}

// At most three batch jobs at once.
func ExampleSemaphore() {
	kapi := keysAPI()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sem := concurrency.NewSemaphore(s, "/sem/batch", 3)
	if err := sem.Acquire(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("running with permit", sem.Token())
	if err := sem.Release(ctx); err != nil {
		log.Fatal(err)
	}
}

// Readers share the lock; a writer has it alone.
func ExampleRWMutex() {
	kapi := keysAPI()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	rw := concurrency.NewRWMutex(s, "/rw/cfg")
	if err := rw.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	// ... read the configuration ...
	if err := rw.RUnlock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := rw.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	// ... rewrite it ...
	if err := rw.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
}

// A coordinator holds the barrier; workers wait until it releases it.
func ExampleBarrier() {
	kapi := keysAPI()
	ctx := context.Background()
	b := concurrency.NewBarrier(kapi, "/barrier/deploy")
	if err := b.Hold(ctx); err != nil {
		log.Fatal(err)
	}
	go func() {
		// ... prepare ...
		b.Release(ctx)
	}()
	if err := concurrency.NewBarrier(kapi, "/barrier/deploy").Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("go")
}

// Producers enqueue, consumers dequeue in order; each item goes to one
// consumer.
func ExampleQueue() {
	kapi := keysAPI()
	ctx := context.Background()
	q := concurrency.NewQueue(kapi, "/queue/jobs")
	if err := q.Enqueue(ctx, "resize image 17"); err != nil {
		log.Fatal(err)
	}
	job, err := q.Dequeue(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job)
}
