package concurrency

import (
	"testing"

	"github.com/etcdv2/client/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
