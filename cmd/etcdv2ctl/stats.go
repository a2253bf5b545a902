package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/etcdv2/client"
	"github.com/urfave/cli"
)

func (t *tool) statsCommand() cli.Command {
	return cli.Command{
		Name:      "stats",
		Usage:     "send requests and show the client's health view of each endpoint",
		ArgsUsage: " ",
		Description: `Stats sends --requests reads (GET /version) through the endpoint
   selection of --selector, then prints, per endpoint, what the client's
   health machinery saw: its state (healthy, probation, ejected), whether
   it is the leader's, attempts, failures, ejections, latency, in-flight
   requests and the last etcd index it answered with. With -o json it prints
   the whole snapshot as JSON. With --forever it repeats every --interval
   until interrupted, on the same client, so counters grow.

   Example:
   $ etcdv2ctl --selector least-latency stats --requests 100`,
		Flags: []cli.Flag{
			cli.IntFlag{Name: "requests, n", Value: 20, Usage: "requests to send before each report"},
			cli.BoolFlag{Name: "forever, f", Usage: "report every --interval until CTRL+C"},
			cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "pause between reports with --forever"},
		},
		Action: t.stats,
	}
}

func (t *tool) stats(c *cli.Context) error {
	if len(c.Args()) != 0 {
		t.fail("No arguments accepted")
	}
	hc := t.mustClient(c)
	defer hc.Close()
	sr, ok := hc.(client.StatsReporter)
	if !ok {
		t.fail("the client reports no statistics")
	}
	var mu sync.Mutex
	if c.Bool("forever") {
		t.exitOnInterrupt(&mu)
	}
	for {
		ok := 0
		var lastErr error
		for i := 0; i < c.Int("requests"); i++ {
			ctx, cancel := context.WithTimeout(context.Background(), c.GlobalDuration("total-timeout"))
			_, err := hc.GetVersion(ctx)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			ok++
		}
		mu.Lock()
		t.printStats(sr.Stats(), c.GlobalString("output"), ok, c.Int("requests"), lastErr)
		t.stdout.Flush()
		mu.Unlock()
		if !c.Bool("forever") {
			if lastErr != nil {
				t.exit(exitServerError)
			}
			return nil
		}
		time.Sleep(c.Duration("interval"))
	}
}

// printStats prints one report.
func (t *tool) printStats(st client.Stats, format string, ok, sent int, lastErr error) {
	if format == "json" {
		b, err := json.Marshal(st)
		if err != nil {
			panic(err)
		}
		t.println(string(b))
		return
	}
	t.printf("requests: %d sent, %d ok; client totals: %d requests, %d retries, %d retries denied, attempt timeout %s\n",
		sent, ok, st.Requests, st.Retries, st.RetriesDenied, st.AttemptTimeout)
	if lastErr != nil {
		t.printf("last error: %v\n", compat(lastErr))
	}
	w := tabwriter.NewWriter(t.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ENDPOINT\tSTATE\tLEADER\tATTEMPTS\tFAILURES\tEJECTIONS\tLATENCY\tIN-FLIGHT\tINDEX")
	for _, e := range st.Endpoints {
		fmt.Fprintf(w, "%s\t%s\t%v\t%d\t%d\t%d\t%s\t%d\t%d\n", e.URL, e.State, e.Leader, e.Attempts, e.Failures, e.Ejections,
			e.Latency.Round(time.Microsecond), e.InFlight, e.EtcdIndex)
	}
	w.Flush()
}
