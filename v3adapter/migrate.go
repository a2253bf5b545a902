package v3adapter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/etcdv2/client"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// MigrateOptions configures Migrate. The zero value copies the visible
// tree into DefaultPrefix in batches of 100 keys and catches up until the
// source has been quiet for 2 seconds.
type MigrateOptions struct {
	// Prefix is the adapter prefix to copy into (as WithPrefix); "" means
	// DefaultPrefix.
	Prefix string
	// Hidden lists hidden paths (a "_" element) to copy as well: a v2
	// listing leaves them out, so Migrate cannot find them by itself. Each
	// is read again, with its subtree, after the catch-up, and replaces
	// what the target has there. The paths are as src takes them (relative
	// to its prefix if it is a KeysAPI with one); in the target, as the
	// whole copy, they are the full paths the source answers with.
	Hidden []string
	// Batch is the number of keys written per v3 transaction; 0 means 100.
	// It must not exceed the server's --max-txn-ops (128 by default).
	Batch int
	// Quiet ends the catch-up once the source sent no event for this long;
	// 0 means 2 seconds.
	Quiet time.Duration
	// Progress, if not nil, is called from Migrate's goroutine after each
	// batch of the copy and each replayed event; nil means no reports.
	Progress func(MigrateProgress)
}

// MigrateProgress is a progress report of Migrate.
type MigrateProgress struct {
	// Phase is "copy" (the listing), "catch-up" (replaying events) or
	// "hidden" (copying MigrateOptions.Hidden again).
	Phase string
	// Done counts the nodes written in this phase so far (events replayed
	// in "catch-up"; per hidden path in "hidden"); Total is the number to
	// write, 0 when unknown.
	Done, Total int
	// Restarts counts the runs started again from a fresh listing because
	// the source's history no longer held the listing's index.
	Restarts int
}

// Migrate copies the v2 tree that src serves into the adapter's layout in
// the v3 keyspace of cli, while writers may keep writing to src:
//
//  1. it lists the whole tree (and the Hidden paths) at index I,
//  2. writes every node in batches (one v3 transaction each; a node with a
//     TTL gets a lease of its own, of its remaining TTL),
//  3. deletes the keys under the prefix that the listing does not have
//     (left by an earlier, interrupted run or older data),
//  4. replays the source's events after I through the adapter until the
//     source is quiet for Quiet, then copies the Hidden paths again.
//
// src must be able to list the whole tree in one Get: with this library's
// client set Config.HeaderTimeoutPerRequest, since a v2 server sends the
// headers of a listing only once it has rendered all of it, and the
// client's adaptive timeout can be as short as 250 ms.
//
// Every step overwrites rather than appends, so an interrupted run is
// resumed by running Migrate again. The new nodes get new v3 revisions as
// their indexes (v2 indexes cannot be kept); in-order keys keep their names.
// If the source's history no longer holds I (error 401), Migrate starts
// again from the listing, up to three times. It returns the number of nodes
// the listing and the Hidden paths held (each copied once in step 2).
func Migrate(ctx context.Context, src client.KeysAPI, cli *clientv3.Client, opts MigrateOptions) (int, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.Quiet <= 0 {
		opts.Quiet = 2 * time.Second
	}
	dst := NewKeysAPI(cli, WithPrefix(opts.Prefix)).(*keysAPI)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var n int
		m := migration{src: src, dst: dst, opts: opts, restarts: attempt}
		n, err = m.run(ctx)
		if !errors.Is(err, client.Error{Code: client.ErrorCodeEventIndexCleared}) {
			return n, err
		}
	}
	return 0, err
}

// migration is one run of Migrate, from a fresh listing.
type migration struct {
	src      client.KeysAPI
	dst      *keysAPI
	opts     MigrateOptions
	restarts int
}

func (m *migration) report(phase string, done, total int) {
	if m.opts.Progress != nil {
		m.opts.Progress(MigrateProgress{Phase: phase, Done: done, Total: total, Restarts: m.restarts})
	}
}

func (m *migration) run(ctx context.Context) (int, error) {
	src, dst, opts := m.src, m.dst, m.opts
	list, err := src.Get(ctx, "/", &client.GetOptions{Recursive: true, Sort: true, Quorum: true})
	if err != nil {
		return 0, err
	}
	nodes := map[string]*client.Node{}
	var flatten func(n *client.Node)
	flatten = func(n *client.Node) {
		if n.Key != "" && n.Key != "/" {
			nodes[cleanPath(n.Key)] = n
		}
		for _, c := range n.Nodes {
			flatten(c)
		}
	}
	flatten(list.Node)
	// The listing's keys are the source's full paths (a KeysAPI with a
	// prefix answers with them), and so are the target's: a hidden path,
	// given relative to the source's root, is deleted under its full path.
	root := cleanPath(list.Node.Key)
	full := func(h string) string { return cleanPath(root + cleanPath(h)) }
	for _, h := range opts.Hidden {
		r, err := src.Get(ctx, h, &client.GetOptions{Recursive: true, Sort: true, Quorum: true})
		if client.IsKeyNotFound(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		flatten(r.Node)
	}
	written, err := dst.copyNodes(ctx, nodes, opts.Batch, func(done int) { m.report("copy", done, len(nodes)) })
	if err != nil {
		return written, err
	}
	if err := dst.sweep(ctx, nodes, opts.Batch); err != nil {
		return written, err
	}
	if err := dst.catchUp(ctx, src, list.Index, opts.Quiet, func(done int) { m.report("catch-up", done, 0) }); err != nil {
		return written, err
	}
	for _, h := range opts.Hidden {
		r, err := src.Get(ctx, h, &client.GetOptions{Recursive: true, Sort: true, Quorum: true})
		if client.IsKeyNotFound(err) {
			if _, err := dst.Delete(ctx, full(h), &client.DeleteOptions{Recursive: true}); err != nil && !client.IsKeyNotFound(err) {
				return written, err
			}
			continue
		}
		if err != nil {
			return written, err
		}
		sub := map[string]*client.Node{}
		var walkSub func(n *client.Node)
		walkSub = func(n *client.Node) {
			sub[cleanPath(n.Key)] = n
			for _, c := range n.Nodes {
				walkSub(c)
			}
		}
		walkSub(r.Node)
		if _, err := dst.Delete(ctx, full(h), &client.DeleteOptions{Recursive: true}); err != nil && !client.IsKeyNotFound(err) {
			return written, err
		}
		_, err = dst.copyNodes(ctx, sub, opts.Batch, func(done int) { m.report("hidden", done, len(sub)) })
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// copyNodes writes nodes (parents before children) in batches.
func (k *keysAPI) copyNodes(ctx context.Context, nodes map[string]*client.Node, batch int, progress func(int)) (int, error) {
	paths := make([]string, 0, len(nodes))
	for p := range nodes {
		paths = append(paths, p)
	}
	// Parents first: a shorter path never sorts after its own children
	// when compared element by element.
	sort.Slice(paths, func(i, j int) bool { return paths[i] < paths[j] })
	// The lease of each directory copied with one and when it ends.
	type dirDeath struct {
		id    clientv3.LeaseID
		death int64
	}
	dirLease := map[string]dirDeath{}
	written := 0
	for len(paths) > 0 {
		n := min(batch, len(paths))
		chunk := paths[:n]
		paths = paths[n:]
		ops := make([]clientv3.Op, 0, n)
		for _, p := range chunk {
			node := nodes[p]
			st := stored{dir: node.Dir, flags: flagTarget, action: "set", value: node.Value}
			var dir dirDeath
			for a := parentOf(p); a != "/"; a = parentOf(a) {
				if dl, ok := dirLease[a]; ok {
					dir = dl
					break
				}
			}
			id, death := dir.id, dir.death
			if node.TTL > 0 {
				st.expires = time.Now().Add(time.Duration(node.TTL) * time.Second).UnixNano()
				if dir.id == 0 || st.expires < dir.death {
					// A lease of its own, as the adapter's writes give:
					// keys sharing one would expire in one revision (one
					// watch event), and a TTL change of one would take
					// the others. A node that would outlive its
					// directory rides the directory's lease instead.
					l, err := k.grant(ctx, node.TTL)
					if err != nil {
						return written, err
					}
					st.expires, id, death = l.expires, l.id, l.expires
				}
			}
			if node.Dir && id != 0 {
				dirLease[p] = dirDeath{id: id, death: death}
			}
			var lo []clientv3.OpOption
			if id != 0 {
				lo = append(lo, clientv3.WithLease(id))
			}
			ops = append(ops, clientv3.OpPut(k.key(p), string(encode(st)), lo...))
		}
		if _, err := k.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return written, fmt.Errorf("v3adapter: migrate: writing %d keys from %s: %w", len(ops), chunk[0], err)
		}
		written += n
		progress(written)
	}
	return written, nil
}

// sweep deletes the keys under the prefix that are not in nodes. Each
// transaction also puts the delete marker (one of its batch operations),
// so that watchers report these deletes as deletes, not expiries.
func (k *keysAPI) sweep(ctx context.Context, nodes map[string]*client.Node, batch int) error {
	start := k.below("/")
	end := clientv3.GetPrefixRangeEnd(start)
	per := max(batch-1, 1)
	commit := func(ops []clientv3.Op) error {
		ops = append(ops, clientv3.OpPut(k.deleteMarker(), "delete"))
		_, err := k.cli.Txn(ctx).Then(ops...).Commit()
		return err
	}
	for {
		r, err := k.cli.Get(ctx, start, clientv3.WithRange(end), clientv3.WithKeysOnly(), clientv3.WithLimit(1000))
		if err != nil {
			return err
		}
		var ops []clientv3.Op
		for _, kv := range r.Kvs {
			if _, ok := nodes[k.pathOf(kv.Key)]; !ok {
				ops = append(ops, clientv3.OpDelete(string(kv.Key)))
			}
			if len(ops) == per {
				if err := commit(ops); err != nil {
					return err
				}
				ops = nil
			}
		}
		if len(ops) > 0 {
			if err := commit(ops); err != nil {
				return err
			}
		}
		if !r.More || len(r.Kvs) == 0 {
			return nil
		}
		start = string(r.Kvs[len(r.Kvs)-1].Key) + "\x00"
	}
}

// catchUp replays src's events after index until src is quiet.
func (k *keysAPI) catchUp(ctx context.Context, src client.KeysAPI, index uint64, quiet time.Duration, progress func(int)) error {
	done := 0
	w := src.Watcher("/", &client.WatcherOptions{AfterIndex: index, Recursive: true})
	for {
		wctx, cancel := context.WithTimeout(ctx, quiet)
		ev, err := w.Next(wctx)
		quietEnded := err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded)
		cancel()
		if quietEnded {
			return nil
		}
		if err != nil {
			return err
		}
		if err := k.apply(ctx, ev); err != nil {
			return err
		}
		done++
		progress(done)
	}
}

// apply replays one v2 event.
func (k *keysAPI) apply(ctx context.Context, ev *client.Response) error {
	n := ev.Node
	switch ev.Action {
	case "delete", "compareAndDelete", "expire":
		_, err := k.Delete(ctx, n.Key, &client.DeleteOptions{Recursive: true})
		if err != nil && !client.IsKeyNotFound(err) {
			return err
		}
		return nil
	}
	if n.Dir {
		// A new directory (maybe over a file), or a TTL change.
		var err error
		if ev.Action == "set" || ev.Action == "create" {
			_, err = k.Set(ctx, n.Key, "", &client.SetOptions{Dir: true, TTL: n.TTLDuration()})
			if !errors.Is(err, client.Error{Code: client.ErrorCodeNotFile}) {
				return err // created, or failed; 102: it is a directory already
			}
		}
		_, err = k.Set(ctx, n.Key, "", &client.SetOptions{Dir: true, TTL: n.TTLDuration(), PrevExist: client.PrevExist})
		return err
	}
	_, err := k.Set(ctx, n.Key, n.Value, &client.SetOptions{TTL: n.TTLDuration()})
	return err
}
