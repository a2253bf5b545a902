package parity

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/internal/leakcheck"
	"github.com/etcdv2/client/internal/v2fake"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestScenariosOnFake runs every scenario against the fake: they run to
// the end, twice in a row on one member (as on a real one), with the same
// records.
func TestScenariosOnFake(t *testing.T) {
	s := v2fake.Start(t, v2fake.Options{})
	c, err := client.New(client.Config{Endpoints: []string{s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, sc := range Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			if sc.Slow && testing.Short() {
				t.Skip("slow")
			}
			steps, err := Run(ctx, Target{Client: c, URL: s.URL}, sc)
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) == 0 {
				t.Fatal("no steps")
			}
			for _, st := range steps {
				t.Logf("%s: %s", st.Name, st.Got)
			}
		})
	}
}

func TestNormalise(t *testing.T) {
	r := &Recorder{base: 100, subst: strings.NewReplacer("http://127.0.0.1:5", "<client0.0>")}
	got := r.normalise(`{"key":"/q/00000000000000000103","modifiedIndex":101,"createdIndex":0,"expiration":"2026-01-01T00:00:00Z","index":99} [98/101] [1 != 102] http://127.0.0.1:5/v2`)
	want := `{"key":"/q/<i+3>","modifiedIndex":"i+1","createdIndex":"0","expiration":"<time>","index":"i-1"} [i-2/i+1] [i-99 != i+2] <client0.0>/v2`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
