package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/etcdv2/client"
	"github.com/urfave/cli"
)

func (t *tool) memberCommand() cli.Command {
	return cli.Command{
		Name:  "member",
		Usage: "member add, remove and list subcommands",
		Subcommands: []cli.Command{
			{
				Name:      "list",
				Usage:     "enumerate existing cluster members",
				ArgsUsage: " ",
				Description: `Example:
   $ etcdv2ctl member list`,
				Action: t.memberList,
			},
			{
				Name:      "add",
				Usage:     "add a new member to the etcd cluster",
				ArgsUsage: "<name> <peerURL>",
				Description: `Add announces a new member; start it with the printed environment.

   Example:
   $ etcdv2ctl member add infra3 http://10.0.1.13:2380`,
				Action: t.memberAdd,
			},
			{
				Name:      "remove",
				Usage:     "remove an existing member from the etcd cluster",
				ArgsUsage: "<memberID>",
				Description: `Example:
   $ etcdv2ctl member remove 8e9e05c52164694d`,
				Action: t.memberRemove,
			},
			{
				Name:      "update",
				Usage:     "update an existing member in the etcd cluster",
				ArgsUsage: "<memberID> <peerURLs>",
				Description: `Example:
   $ etcdv2ctl member update 8e9e05c52164694d http://10.0.1.10:2380`,
				Action: t.memberUpdate,
			},
		},
	}
}

func (t *tool) membersAPI(c *cli.Context) client.MembersAPI {
	return client.NewMembersAPI(t.mustClient(c))
}

// fail prints a plain error line and ends with exit status 1.
func (t *tool) fail(a ...any) {
	t.errorln(a...)
	t.exit(exitError)
}

func (t *tool) memberList(c *cli.Context) error {
	if len(c.Args()) != 0 {
		t.fail("No arguments accepted")
	}
	m := t.membersAPI(c)
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	members, err := m.List(ctx)
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	leader, err := m.Leader(ctx)
	if err != nil {
		t.fail("Failed to get leader: ", t.compat(err))
	}
	for _, mb := range members {
		if len(mb.Name) == 0 {
			t.printf("%s[unstarted]: peerURLs=%s\n", mb.ID, strings.Join(mb.PeerURLs, ","))
		} else {
			t.printf("%s: name=%s peerURLs=%s clientURLs=%s isLeader=%v\n", mb.ID, mb.Name, strings.Join(mb.PeerURLs, ","), strings.Join(mb.ClientURLs, ","), mb.ID == leader.ID)
		}
	}
	return nil
}

func (t *tool) memberAdd(c *cli.Context) error {
	args := c.Args()
	if len(args) != 2 {
		t.fail("Provide a name and a single member peerURL")
	}
	m := t.membersAPI(c)
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	if err := checkPeerURLs([]string{args[1]}); err != nil {
		t.fail(err.Error())
	}
	added, err := m.Add(ctx, args[1])
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	newName := args[0]
	t.printf("Added member named %s with ID %s to cluster\n", newName, added.ID)
	members, err := m.List(ctx)
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	var conf []string
	for _, mb := range members {
		for _, u := range mb.PeerURLs {
			n := mb.Name
			if mb.ID == added.ID {
				n = newName
			}
			conf = append(conf, fmt.Sprintf("%s=%s", n, u))
		}
	}
	t.printf("\n")
	t.printf("ETCD_NAME=%q\n", newName)
	t.printf("ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
	t.printf("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
	return nil
}

func (t *tool) memberRemove(c *cli.Context) error {
	args := c.Args()
	if len(args) != 1 {
		t.fail("Provide a single member ID")
	}
	id := args[0]
	m := t.membersAPI(c)
	ctx, cancel := t.totalTimeout(c)
	defer cancel()
	members, err := m.List(ctx)
	if err != nil {
		t.fail("Error while verifying ID against known members:", t.compat(err).Error())
	}
	found := false
	for _, mb := range members {
		if mb.ID == id {
			found = true
		}
		if mb.Name == id {
			t.errorf("Found a member named %s; if this is correct, please use its ID, eg:\n\tetcdctl member remove %s\n", mb.Name, mb.ID)
			t.errorf("For more details, read the documentation at https://github.com/etcd-io/etcd/blob/main/Documentation/runtime-configuration.md#remove-a-member\n\n")
		}
	}
	if !found {
		t.errorf("Couldn't find a member in the cluster with an ID of %s.\n", id)
		t.exit(exitError)
	}
	if err := m.Remove(ctx, id); err != nil {
		t.errorf("Received an error trying to remove member %s: %s", id, t.compat(err).Error())
		t.exit(exitError)
	}
	t.printf("Removed member %s from cluster\n", id)
	return nil
}

func (t *tool) memberUpdate(c *cli.Context) error {
	args := c.Args()
	if len(args) != 2 {
		t.fail("Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)")
	}
	m := t.membersAPI(c)
	ctx, cancel := t.totalTimeout(c)
	urls := strings.Split(args[1], ",")
	if err := checkPeerURLs(urls); err != nil {
		cancel()
		t.fail(err.Error())
	}
	err := m.Update(ctx, args[0], urls)
	cancel()
	if err != nil {
		t.fail(t.compat(err).Error())
	}
	t.printf("Updated member with ID %s in cluster\n", args[0])
	return nil
}

func (t *tool) clusterHealthCommand() cli.Command {
	return cli.Command{
		Name:      "cluster-health",
		Usage:     "check the health of the etcd cluster",
		ArgsUsage: " ",
		Description: `Cluster-health asks every member's /health; the exit status is 0 when
   all are healthy, 5 otherwise.

   Example:
   $ etcdv2ctl cluster-health`,
		Flags: []cli.Flag{
			cli.BoolFlag{Name: "forever, f", Usage: "forever check the health every 10 second until CTRL+C"},
		},
		Action: t.clusterHealth,
	}
}

func (t *tool) clusterHealth(c *cli.Context) error {
	forever := c.Bool("forever")
	if forever {
		sigch := make(chan os.Signal, 1)
		signal.Notify(sigch, os.Interrupt)
		go func() {
			<-sigch
			os.Exit(exitSuccess)
		}()
	}
	tr, err := t.transport(c)
	if err != nil {
		t.handleError(c, exitServerError, err)
	}
	hc := http.Client{Transport: tr}
	cln := t.mustClientNoSync(c)
	ms, err := client.NewMembersAPI(cln).List(context.Background())
	if err != nil {
		t.println("cluster may be unhealthy: failed to list members")
		t.handleError(c, exitServerError, err)
	}
	for {
		healthy := 0
		for _, m := range ms {
			if len(m.ClientURLs) == 0 {
				t.printf("member %s is unreachable: no available published client urls\n", m.ID)
				continue
			}
			checked := false
			for _, url := range m.ClientURLs {
				resp, err := hc.Get(url + "/health")
				if err != nil {
					t.printf("failed to check the health of member %s on %s: %v\n", m.ID, url, err)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.printf("failed to check the health of member %s on %s: %v\n", m.ID, url, err)
					continue
				}
				result := struct{ Health string }{}
				nresult := struct{ Health bool }{}
				err = json.Unmarshal(b, &result)
				if err != nil {
					err = json.Unmarshal(b, &nresult)
				}
				if err != nil {
					t.printf("failed to check the health of member %s on %s: %v\n", m.ID, url, err)
					continue
				}
				checked = true
				if result.Health == "true" || nresult.Health {
					t.printf("member %s is healthy: got healthy result from %s\n", m.ID, url)
					healthy++
				} else {
					t.printf("member %s is unhealthy: got unhealthy result from %s\n", m.ID, url)
				}
				break
			}
			if !checked {
				t.printf("member %s is unreachable: %v are all unreachable\n", m.ID, m.ClientURLs)
			}
		}
		switch healthy {
		case len(ms):
			t.println("cluster is healthy")
		case 0:
			t.println("cluster is unavailable")
		default:
			t.println("cluster is degraded")
		}
		if !forever {
			if healthy == len(ms) {
				t.exit(exitSuccess)
			}
			t.exit(exitClusterNotHealthy)
		}
		t.printf("\nnext check after 10 second...\n\n")
		t.stdout.Flush()
		time.Sleep(10 * time.Second)
	}
}

// checkPeerURLs validates peer URLs as etcdctl v2 did before sending them,
// with its messages.
func checkPeerURLs(urls []string) error {
	if len(urls) == 0 {
		return errors.New("no valid URLs given")
	}
	for _, in := range urls {
		in = strings.TrimSpace(in)
		u, err := url.Parse(in)
		if err != nil {
			return err
		}
		switch u.Scheme {
		case "http", "https":
			if _, _, err := net.SplitHostPort(u.Host); err != nil {
				return fmt.Errorf(`URL address does not have the form "host:port": %s`, in)
			}
			if u.Path != "" {
				return fmt.Errorf("URL must not contain a path: %s", in)
			}
		case "unix", "unixs":
		default:
			return fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", in)
		}
	}
	return nil
}
