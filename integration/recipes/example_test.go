package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/testbed"
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

// A session keeps its keys alive by renewing them; Done stays open while
// the renewals succeed and closes once the session is over.
func Example_session() {
	kapi, stop := exampleKeys()
	defer stop()

	s, err := concurrency.NewSession(kapi, concurrency.WithTTL(2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	fmt.Println("TTL:", s.TTL())

	select {
	case <-s.Done():
		fmt.Println("session lost")
	case <-time.After(3 * time.Second): // longer than the TTL
		fmt.Println("still alive after 3s: renewed")
	}
	s.Close()
	<-s.Done()
	fmt.Println("closed")
	// Output:
	// TTL: 2s
	// still alive after 3s: renewed
	// closed
}

// Each holder of the lock writes through FencedSet with its fencing token;
// a holder that lost the lock (paused past its TTL, say) and writes late
// with its old token is refused.
func Example_mutexFencing() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	first := concurrency.NewMutex(s, "/locks/db")
	if err := first.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	oldToken := first.Token()
	if _, err := concurrency.FencedSet(ctx, kapi, "/db/schema", "v1", oldToken); err != nil {
		log.Fatal(err)
	}
	first.Unlock(ctx)

	second := concurrency.NewMutex(s, "/locks/db") // the next holder
	if err := second.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("tokens increase:", second.Token() > oldToken)
	if _, err := concurrency.FencedSet(ctx, kapi, "/db/schema", "v2", second.Token()); err != nil {
		log.Fatal(err)
	}
	second.Unlock(ctx)

	_, err = concurrency.FencedSet(ctx, kapi, "/db/schema", "v1-late", oldToken)
	fmt.Println("late write refused:", errors.Is(err, concurrency.ErrStaleToken))
	// Output:
	// tokens increase: true
	// late write refused: true
}

// TryLock returns ErrLocked at once while another session holds the lock.
func Example_tryLock() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	holder, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer holder.Close()
	other, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()

	held := concurrency.NewMutex(holder, "/locks/report")
	if err := held.Lock(ctx); err != nil {
		log.Fatal(err)
	}
	m := concurrency.NewMutex(other, "/locks/report")
	err = m.TryLock(ctx)
	fmt.Println("while held:", errors.Is(err, concurrency.ErrLocked))

	held.Unlock(ctx)
	fmt.Println("after Unlock:", m.TryLock(ctx))
	m.Unlock(ctx)
	// Output:
	// while held: true
	// after Unlock: <nil>
}

// Two candidates: the first leads until it resigns, then the second; an
// observer sees both terms.
func Example_election() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s1.Close()
	s2, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s2.Close()

	a := concurrency.NewElection(s1, "/election/api")
	if err := a.Campaign(ctx, "10.0.0.1:8080"); err != nil {
		log.Fatal(err)
	}
	b := concurrency.NewElection(s2, "/election/api")
	campaigned := make(chan error, 1)
	go func() { campaigned <- b.Campaign(ctx, "10.0.0.2:8080") }() // waits for a

	l, err := a.Leader(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("leader:", l.Value)

	var terms []concurrency.Leader
	for l, err := range a.Observe(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("observed:", l.Value)
		if terms = append(terms, l); len(terms) == 2 {
			break
		}
		a.Resign(ctx) // hands over to b
	}
	if err := <-campaigned; err != nil {
		log.Fatal(err)
	}
	fmt.Println("new term, higher token:", terms[1].Token > terms[0].Token)
	b.Resign(ctx)
	_, err = b.Leader(ctx)
	fmt.Println("after both resigned:", err)
	// Output:
	// leader: 10.0.0.1:8080
	// observed: 10.0.0.1:8080
	// observed: 10.0.0.2:8080
	// new term, higher token: true
	// after both resigned: concurrency: election has no leader
}

// A semaphore of 2 permits: a third holder is refused until a permit is
// released.
func Example_semaphore() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	var jobs []*concurrency.Semaphore // one handle per holder
	for i := 1; i <= 3; i++ {
		sem := concurrency.NewSemaphore(s, "/sem/batch", 2)
		err := sem.TryAcquire(ctx)
		fmt.Printf("job %d: %v\n", i, err)
		if err == nil {
			jobs = append(jobs, sem)
		}
	}
	jobs[0].Release(ctx)
	third := concurrency.NewSemaphore(s, "/sem/batch", 2)
	fmt.Println("job 3 again:", third.TryAcquire(ctx))
	jobs[1].Release(ctx)
	third.Release(ctx)
	// Output:
	// job 1: <nil>
	// job 2: <nil>
	// job 3: concurrency: locked by another holder
	// job 3 again: <nil>
}

// Two readers hold the read lock together; a writer gets it once both
// have let go.
func Example_rwMutex() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := concurrency.NewSession(kapi)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	r1 := concurrency.NewRWMutex(s, "/rw/config")
	r2 := concurrency.NewRWMutex(s, "/rw/config")
	if err := r1.RLock(ctx); err != nil {
		log.Fatal(err)
	}
	if err := r2.RLock(ctx); err != nil { // does not wait for r1
		log.Fatal(err)
	}
	fmt.Println("two readers hold it")

	w := concurrency.NewRWMutex(s, "/rw/config")
	locked := make(chan error, 1)
	go func() { locked <- w.Lock(ctx) }() // waits for both readers
	r1.RUnlock(ctx)
	r2.RUnlock(ctx)
	if err := <-locked; err != nil {
		log.Fatal(err)
	}
	fmt.Println("the writer holds it")
	w.Unlock(ctx)
	// Output:
	// two readers hold it
	// the writer holds it
}

// A coordinator holds the barrier; workers wait until it releases it.
func Example_barrier() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b := concurrency.NewBarrier(kapi, "/barrier/deploy")
	if err := b.Hold(ctx); err != nil {
		log.Fatal(err)
	}
	passed := make(chan error)
	for range 2 {
		go func() { passed <- concurrency.NewBarrier(kapi, "/barrier/deploy").Wait(ctx) }()
	}
	fmt.Println("held")
	if err := b.Release(ctx); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		fmt.Println("worker passed:", <-passed)
	}
	// Output:
	// held
	// worker passed: <nil>
	// worker passed: <nil>
}

// Items come out of the queue in the order they went in.
func Example_queue() {
	kapi, stop := exampleKeys()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	q := concurrency.NewQueue(kapi, "/queue/jobs")
	for _, job := range []string{"resize 17", "resize 18", "resize 19"} {
		if err := q.Enqueue(ctx, job); err != nil {
			log.Fatal(err)
		}
	}
	for range 3 {
		job, err := q.Dequeue(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(job)
	}
	// Output:
	// resize 17
	// resize 18
	// resize 19
}
