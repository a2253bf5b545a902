package client

import (
	"os"
	"testing"

	"github.com/etcdv2/client/internal/leakcheck"
)

func TestMain(m *testing.M) {
	os.Exit(leakcheck.Run(m))
}
