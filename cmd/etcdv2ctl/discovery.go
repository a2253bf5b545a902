package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/etcdv2/client/registry"
	"github.com/urfave/cli"
)

// rootFlag is the directory of the service registry.
var rootFlag = cli.StringFlag{Name: "root", Value: "/services", Usage: "directory of the service registry"}

func (t *tool) registerCommand() cli.Command {
	return cli.Command{
		Name:      "register",
		Usage:     "register a service instance and keep it alive until interrupted",
		ArgsUsage: "<service> <id> <addr>",
		Description: `Register writes the instance under --root/<service>/<id> with a TTL,
   refreshes it every third of the TTL, prints its key and keeps it until
   interrupted (SIGINT or SIGTERM: it deregisters). If the registration is
   lost (it could not be refreshed in time, or was deleted or replaced) it
   exits with status 6. An instance of the same service and ID registered by
   another process is an error unless --replace is given.

   Example:
   $ etcdv2ctl register --ttl 10 --tag v2 --meta zone=a api api-1 10.0.0.5:8080`,
		Flags: []cli.Flag{
			rootFlag,
			cli.IntFlag{Name: "ttl", Value: int(registry.DefaultTTL / time.Second), Usage: "TTL of the registration in seconds"},
			cli.StringSliceFlag{Name: "tag", Value: new(cli.StringSlice), Usage: "a tag of the instance (repeatable)"},
			cli.StringSliceFlag{Name: "meta", Value: new(cli.StringSlice), Usage: "metadata key=value (repeatable)"},
			cli.BoolFlag{Name: "replace", Usage: "replace an instance with the same ID registered by another process"},
		},
		Action: func(c *cli.Context) error {
			args := c.Args()
			if len(args) != 3 {
				t.handleError(c, exitBadArgs, errors.New("service, id and address required"))
			}
			inst := registry.Instance{Service: args[0], ID: args[1], Addr: args[2], Tags: c.StringSlice("tag")}
			for _, kv := range c.StringSlice("meta") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.handleError(c, exitBadArgs, fmt.Errorf("--meta wants key=value, got %q", kv))
				}
				if inst.Meta == nil {
					inst.Meta = map[string]string{}
				}
				inst.Meta[k] = v
			}
			opts := []registry.RegisterOption{registry.WithTTL(time.Duration(c.Int("ttl")) * time.Second)}
			if c.Bool("replace") {
				opts = append(opts, registry.WithReplace())
			}
			ctx, stop, _ := signals()
			defer stop()
			r := registry.New(t.keysAPI(c), c.String("root"))
			rctx, cancel := t.totalTimeout(c)
			reg, err := r.Register(rctx, inst, opts...)
			cancel()
			if err != nil {
				t.handleError(c, exitServerError, err)
			}
			t.println(reg.Key())
			t.stdout.Flush()
			select {
			case <-ctx.Done():
				dctx, cancel := t.totalTimeout(c)
				err := reg.Deregister(dctx)
				cancel()
				if err != nil && !errors.Is(err, registry.ErrLost) {
					t.handleError(c, exitServerError, err)
				}
				t.exit(exitSuccess)
			case <-reg.Done():
				t.errorf("Error:  registration lost: %v\n", reg.Err())
				t.exit(exitLost)
			}
			return nil
		},
	}
}

func (t *tool) instancesCommand() cli.Command {
	return cli.Command{
		Name:      "instances",
		Usage:     "list the instances of a service",
		ArgsUsage: "<service>",
		Description: `Instances prints the instances of a service, sorted by ID, one line each
   (ID, address, status, tags), or as a JSON array with -o json, read with a
   quorum read. With --watch it prints the list again after every change,
   with an empty line after each list, until interrupted.

   Example:
   $ etcdv2ctl instances --passing --tag v2 api
   $ etcdv2ctl -o json instances --watch api`,
		Flags: []cli.Flag{
			rootFlag,
			cli.StringFlag{Name: "tag", Usage: "only instances with this tag"},
			cli.BoolFlag{Name: "passing", Usage: "only instances whose status is passing"},
			cli.BoolFlag{Name: "watch, w", Usage: "print the list after every change until CTRL+C"},
		},
		Action: func(c *cli.Context) error {
			if len(c.Args()) != 1 {
				t.handleError(c, exitBadArgs, errors.New("service required"))
			}
			service := c.Args()[0]
			var filters []registry.Filter
			if tag := c.String("tag"); tag != "" {
				filters = append(filters, registry.Tag(tag))
			}
			if c.Bool("passing") {
				filters = append(filters, registry.PassingOnly())
			}
			r := registry.New(t.keysAPI(c), c.String("root"))
			if !c.Bool("watch") {
				ctx, cancel := t.totalTimeout(c)
				insts, _, err := r.Instances(ctx, service, filters...)
				cancel()
				if err != nil {
					t.handleError(c, exitServerError, err)
				}
				t.printInstances(c, insts, false)
				return nil
			}
			ctx, stop, _ := signals()
			defer stop()
			for insts, err := range r.Watch(ctx, service, filters...) {
				if err != nil {
					if ctx.Err() != nil {
						t.exit(exitSuccess)
					}
					t.handleError(c, exitServerError, err)
				}
				t.printInstances(c, insts, true)
				t.stdout.Flush()
			}
			return nil
		},
	}
}

// printInstances prints one list of instances.
func (t *tool) printInstances(c *cli.Context, insts []registry.Instance, separate bool) {
	if c.GlobalString("output") == "json" {
		if insts == nil {
			insts = []registry.Instance{}
		}
		b, err := json.Marshal(insts)
		if err != nil {
			panic(err)
		}
		t.println(string(b))
		return
	}
	for _, in := range insts {
		t.printf("%s %s %s", in.ID, in.Addr, in.Status)
		if len(in.Tags) > 0 {
			t.printf(" tags=%s", strings.Join(in.Tags, ","))
		}
		t.println()
	}
	if separate {
		t.println()
	}
}
