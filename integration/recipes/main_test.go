package recipes_test

import (
	"os"
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

// TestMain runs a contender process when the test binary is re-executed
// with RECIPES_ROLE set (see contender_test.go); otherwise it runs the tests
// under the bed's leak check.
func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runContender(role))
	}
	testbed.Main(m)
}
