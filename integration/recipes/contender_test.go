package recipes_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/concurrency"
	"github.com/etcdv2/client/integration/backend"
)

// Contender processes: the test binary re-executed with these variables.
const (
	roleEnv      = "RECIPES_ROLE"      // "holder" or "contender"
	endpointsEnv = "RECIPES_ENDPOINTS" // comma-separated
	keyEnv       = "RECIPES_KEY"       // the mutex directory
	resEnv       = "RECIPES_RES"       // the resource key
	ttlEnv       = "RECIPES_TTL"       // session TTL in seconds
	countEnv     = "RECIPES_COUNT"     // acquisitions per worker (contender)
	workersEnv   = "RECIPES_WORKERS"   // workers per process (contender)
	recipeEnv    = "RECIPES_RECIPE"    // holder: "election" or "semaphore" (limit 2) instead of a mutex
)

// runContender is the main of a contender process. It prints one line per
// fact on stdout:
//
//	GRANTED <token> <unix ns>       holder: the lock is held
//	WROTE <token> <index> <unix ns> holder: a fenced write while believing to hold
//	HELD <unix ns>                  holder: Done was open at this check
//	LOST <unix ns>                  holder: Done was closed at this check
//	FENCE <error>                   holder: the fenced write after the loss
//	UNLOCK <error>                  holder: Unlock after the loss
//	HOLD <token> <index>            contender: a write inside the critical section
//	ACQ <id> <call> <return>        contender: Lock called and returned (unix ns)
//	ACQFAIL <id> <call> <return>    contender: Lock failed
//	REL <id> <call> <return> ok|lost contender: Unlock called and returned
//	DONE                            contender: all acquisitions made
func runContender(role string) int {
	eps := strings.Split(os.Getenv(endpointsEnv), ",")
	ttl, _ := strconv.Atoi(os.Getenv(ttlEnv))
	kapi, closeClient, err := backend.NewFromEnv(eps)
	if err != nil {
		fmt.Println("ERR", err)
		return 1
	}
	defer closeClient()
	key, res := os.Getenv(keyEnv), os.Getenv(resEnv)
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	say := func(f string, a ...any) {
		outMu.Lock()
		fmt.Fprintf(out, f+"\n", a...)
		out.Flush()
		outMu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch role {
	case "holder":
		s, err := concurrency.NewSession(kapi, concurrency.WithTTL(time.Duration(ttl)*time.Second))
		if err != nil {
			say("ERR %v", err)
			return 1
		}
		var tok uint64
		var unlock func(context.Context) error
		if os.Getenv(recipeEnv) == "election" {
			e := concurrency.NewElection(s, key)
			if err := e.Campaign(ctx, "holder"); err != nil {
				say("ERR %v", err)
				return 1
			}
			l, err := e.Leader(ctx)
			if err != nil {
				say("ERR %v", err)
				return 1
			}
			tok = l.Token
			unlock = func(ctx context.Context) error {
				if err := e.Proclaim(ctx, "still me?"); err == nil {
					return errors.New("proclaimed after the session ended")
				}
				return e.Resign(ctx)
			}
		} else if os.Getenv(recipeEnv) == "semaphore" {
			sem := concurrency.NewSemaphore(s, key, 2)
			if err := sem.Acquire(ctx); err != nil {
				say("ERR %v", err)
				return 1
			}
			tok = sem.Token()
			unlock = sem.Release
		} else {
			m := concurrency.NewMutex(s, key)
			if err := m.Lock(ctx); err != nil {
				say("ERR %v", err)
				return 1
			}
			tok = m.Token()
			unlock = m.Unlock
		}
		say("GRANTED %d %d", tok, time.Now().UnixNano())
		for i := 0; i < 2400; i++ { // at most 2 minutes
			select {
			case <-s.Done():
				say("LOST %d", time.Now().UnixNano())
				_, ferr := concurrency.FencedSet(ctx, kapi, res, "old holder", tok)
				say("FENCE %v", ferr)
				say("UNLOCK %v", unlock(ctx))
				return 0
			default:
			}
			say("HELD %d", time.Now().UnixNano())
			r, err := concurrency.FencedSet(ctx, kapi, res, "holder", tok)
			if err == nil {
				say("WROTE %d %d %d", tok, r.Node.ModifiedIndex, time.Now().UnixNano())
			}
			time.Sleep(50 * time.Millisecond) // the holder's work pace
		}
		return 0
	case "contender":
		n, _ := strconv.Atoi(os.Getenv(countEnv))
		workers, _ := strconv.Atoi(os.Getenv(workersEnv))
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				contend(ctx, kapi, key, res, ttl, n, os.Getpid()*100+w, say)
			}()
		}
		wg.Wait()
		say("DONE")
		return 0
	}
	return 2
}

// contend makes n acquisitions of the mutex, writing the resource inside
// each, making a new session whenever one ends.
func contend(ctx context.Context, kapi client.KeysAPI, key, res string, ttl, n, id int, say func(string, ...any)) {
	var s *concurrency.Session
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	for done := 0; done < n && ctx.Err() == nil; {
		if s == nil || !alive(s) {
			if s != nil {
				s.Close()
			}
			var err error
			s, err = concurrency.NewSession(kapi, concurrency.WithTTL(time.Duration(ttl)*time.Second))
			if err != nil {
				time.Sleep(100 * time.Millisecond) // cluster unavailable: retry, bounded by ctx
				continue
			}
		}
		var m interface {
			Lock(context.Context) error
			Unlock(context.Context) error
			Token() uint64
		} = concurrency.NewMutex(s, key)
		if os.Getenv(recipeEnv) == "semaphore" {
			m = semLocker{concurrency.NewSemaphore(s, key, 2)}
		}
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		call := time.Now().UnixNano()
		err := m.Lock(lctx)
		ret := time.Now().UnixNano()
		cancel()
		if err != nil {
			say("ACQFAIL %d %d %d", id, call, ret)
			continue
		}
		say("ACQ %d %d %d", id, call, ret)
		tok := m.Token()
		// The write inside the critical section: its index must fall
		// inside this node's tenure in the recorded history.
		var idx uint64
		for try := 0; try < 50 && alive(s); try++ {
			wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			r, err := kapi.Set(wctx, res, strconv.FormatUint(tok, 10), nil)
			cancel()
			if err == nil {
				idx = r.Node.ModifiedIndex
				break
			}
		}
		if idx != 0 && alive(s) {
			say("HOLD %d %d", tok, idx)
		} else if idx != 0 {
			say("HOLDLOST %d %d", tok, idx)
		}
		uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		call = time.Now().UnixNano()
		err = m.Unlock(uctx)
		ret = time.Now().UnixNano()
		cancel()
		ok := "ok"
		if err != nil {
			ok = "lost"
		}
		say("REL %d %d %d %s", id, call, ret, ok)
		done++
	}
}

func alive(s *concurrency.Session) bool {
	select {
	case <-s.Done():
		return false
	default:
		return true
	}
}

// proc is a contender process started by a test.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

// startProc re-executes the test binary as a contender.
func startProc(t *testing.T, role string, env map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, lines: make(chan string, 100000), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// expect returns the next line starting with prefix (skipping others into
// skipped), failing after timeout.
func (p *proc) expect(t *testing.T, prefix string, timeout time.Duration) []string {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			require.True(t, ok, "process ended before %q", prefix)
			if strings.HasPrefix(l, "ERR") {
				t.Fatalf("contender: %s", l)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.Fields(l)
			}
		case <-tm.C:
			t.Fatalf("no %q line within %v", prefix, timeout)
		}
	}
}

func atou(t testing.TB, s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	require.NoError(t, err)
	return v
}

// semLocker lets a contender use a semaphore like a mutex.
type semLocker struct{ *concurrency.Semaphore }

func (l semLocker) Lock(ctx context.Context) error   { return l.Acquire(ctx) }
func (l semLocker) Unlock(ctx context.Context) error { return l.Release(ctx) }
