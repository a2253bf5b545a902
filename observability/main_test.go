package observability_test

import (
	"testing"

	"github.com/etcdv2/client/integration/testbed"
)

func TestMain(m *testing.M) { testbed.Main(m) }
