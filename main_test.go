package client

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/etcdv2/client/internal/leakcheck"
)

// TestMain fails the run if any goroutine started by the tests outlives
// them: every background goroutine of a client must end on Close.
func TestMain(m *testing.M) {
	before := leakcheck.Take()
	code := m.Run()
	if code == 0 {
		if err := leakcheck.Check(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}
