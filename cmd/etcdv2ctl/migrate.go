package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/etcdv2/client"
	"github.com/etcdv2/client/v3adapter"
	"github.com/urfave/cli"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func (t *tool) migrateCommand() cli.Command {
	return cli.Command{
		Name:      "migrate",
		Usage:     "copy the v2 tree into the v3 keyspace of a cluster, in the layout of the v3 adapter",
		ArgsUsage: " ",
		Description: `Migrate copies the v2 tree that --endpoints serve (or its subtree
   --source-prefix) into the keyspace of the cluster at --v3-endpoints, under
   --target-prefix, in the layout that the v3adapter package reads
   (v3adapter.Migrate): v2 programs then run on that cluster through
   v3adapter.NewKeysAPI with WithPrefix(--target-prefix). Writers may keep
   writing to the source meanwhile: after the copy, their changes are
   replayed until the source is quiet for --quiet.

   Keys under the target prefix that the copied tree does not have are deleted.
   An interrupted run is resumed by running migrate again. Hidden paths
   (an element starting with "_") are not listed by the v2 API: name each
   one to copy with --hidden. The listing is one request: for a big tree,
   raise the global --timeout. On a terminal, a progress bar is shown on
   standard error; the number of nodes copied is printed on standard
   output at the end. The v3 cluster must answer within the global
   --total-timeout before the copy starts (exit status 2 otherwise).

   Example:
   $ etcdv2ctl --endpoints http://10.0.0.1:2379 migrate --v3-endpoints https://10.0.1.1:2379 \
       --v3-cert-file client.pem --v3-key-file client-key.pem --v3-ca-file ca.pem`,
		Flags: []cli.Flag{
			cli.StringFlag{Name: "v3-endpoints", Usage: "comma-separated client URLs of the v3 cluster to copy into (required)"},
			cli.StringFlag{Name: "v3-cert-file", Usage: "identify to the v3 cluster using this TLS client certificate file"},
			cli.StringFlag{Name: "v3-key-file", Usage: "identify to the v3 cluster using this TLS key file"},
			cli.StringFlag{Name: "v3-ca-file", Usage: "verify the v3 cluster's certificates using this CA bundle"},
			cli.StringFlag{Name: "source-prefix", Value: "/", Usage: "the v2 directory to copy (its keys keep their names)"},
			cli.StringFlag{Name: "target-prefix", Value: v3adapter.DefaultPrefix, Usage: "the v3 key prefix to copy into (the adapter's WithPrefix)"},
			cli.StringSliceFlag{Name: "hidden", Usage: "a hidden v2 path to copy as well (repeatable)"},
			cli.IntFlag{Name: "batch", Value: 100, Usage: "keys written per v3 transaction (at most the server's --max-txn-ops)"},
			cli.DurationFlag{Name: "quiet", Value: 2 * time.Second, Usage: "end the catch-up once the source sent no change for this long"},
		},
		Action: t.migrate,
	}
}

func (t *tool) migrate(c *cli.Context) error {
	eps := strings.FieldsFunc(c.String("v3-endpoints"), func(r rune) bool { return r == ',' })
	if len(eps) == 0 {
		t.errorln("migrate: --v3-endpoints is required")
		t.exit(exitBadArgs)
	}
	v3cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if cert, key, ca := c.String("v3-cert-file"), c.String("v3-key-file"), c.String("v3-ca-file"); cert != "" || key != "" || ca != "" {
		tc, err := tlsConfig(cert, key, ca, "")
		if err != nil {
			t.errorln(err.Error())
			t.exit(exitError)
		}
		v3cfg.TLS = tc
	}
	cli3, err := clientv3.New(v3cfg)
	if err != nil {
		t.errorln(err.Error())
		t.exit(exitError)
	}
	defer cli3.Close()
	// The v3 client waits for a connection as long as it is let: a cluster
	// that cannot be reached (or refuses the certificates) ends the command
	// after --total-timeout rather than hanging in the copy.
	pctx, cancel := t.totalTimeout(c)
	_, err = cli3.Get(pctx, c.String("target-prefix"), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		t.errorf("Error:  v3 cluster %s: %v\n", strings.Join(eps, ","), err)
		t.exit(exitBadConnection)
	}

	hc := t.mustClient(c)
	src := client.NewKeysAPI(hc)
	hidden := c.StringSlice("hidden")
	if dir := strings.Trim(c.String("source-prefix"), "/"); dir != "" {
		// The source directory's URL path: what is read there keeps its
		// full key; hidden paths are named relative to it.
		src = client.NewKeysAPIWithPrefix(hc, "/v2/keys/"+dir)
		for i, h := range hidden {
			rel, ok := strings.CutPrefix("/"+strings.Trim(h, "/"), "/"+dir+"/")
			if !ok {
				t.errorf("migrate: --hidden %s is not under --source-prefix /%s\n", h, dir)
				t.exit(exitBadArgs)
			}
			hidden[i] = "/" + rel
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := t.newProgress("")
	n, err := v3adapter.Migrate(ctx, src, cli3, v3adapter.MigrateOptions{
		Prefix: c.String("target-prefix"),
		Hidden: hidden,
		Batch:  c.Int("batch"),
		Quiet:  c.Duration("quiet"),
		Progress: func(mp v3adapter.MigrateProgress) {
			p.set(mp.Phase, mp.Done, mp.Total)
		},
	})
	p.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			t.errorln("Error:  migrate interrupted; run it again to resume")
		} else {
			t.errorln("Error: ", compat(err))
		}
		t.exit(exitServerError)
	}
	t.printf("migrated %d nodes\n", n)
	return nil
}
