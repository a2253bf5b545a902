package conformance

import (
	"context"
	"time"

	"github.com/etcdv2/client"
)

// Scenarios returns the built-in scenarios: keys, directories, conditions,
// hidden keys, TTLs and refresh, in-order keys, and watches (from history,
// recursive and not, including an expiry).
func Scenarios() []Scenario {
	return []Scenario{
		{"keys", keys},
		{"dirs", dirs},
		{"conditions", conditions},
		{"hidden", hidden},
		{"ttl", ttl},
		{"inorder", inorder},
		{"watch", watch},
		{"expire", expire},
	}
}

func keys(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	r.Rec("set")(k.Set(ctx, b+"/a", "v1", nil))
	r.Rec("get")(k.Get(ctx, b+"/a", nil))
	r.Rec("set again")(k.Set(ctx, b+"/a", "v2", nil))
	r.Rec("create existing")(k.Create(ctx, b+"/a", "x"))
	r.Rec("create")(k.Create(ctx, b+"/b", "vb"))
	r.Rec("update")(k.Update(ctx, b+"/b", "vb2"))
	r.Rec("update missing")(k.Update(ctx, b+"/nope", "x"))
	r.Rec("get missing")(k.Get(ctx, b+"/nope", nil))
	r.Rec("get below missing")(k.Get(ctx, b+"/nope/deeper", nil))
	r.Rec("set no value on success")(k.Set(ctx, b+"/a", "v3", &client.SetOptions{NoValueOnSuccess: true}))
	r.Rec("set empty")(k.Set(ctx, b+"/empty", "", nil))
	r.Rec("get empty")(k.Get(ctx, b+"/empty", nil))
	r.Rec("set root")(k.Set(ctx, "/", "x", nil))
	r.Rec("delete")(k.Delete(ctx, b+"/a", nil))
	r.Rec("delete missing")(k.Delete(ctx, b+"/a", nil))
	r.Rec("get list")(k.Get(ctx, b, &client.GetOptions{Sort: true}))
}

func dirs(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	r.Rec("set deep")(k.Set(ctx, b+"/d/x/y", "vy", nil))
	r.Rec("set sibling")(k.Set(ctx, b+"/d/x0", "v0", nil))
	r.Rec("set sibling2")(k.Set(ctx, b+"/d/x-", "v-", nil))
	r.Rec("get dir")(k.Get(ctx, b+"/d", &client.GetOptions{Sort: true}))
	r.Rec("get recursive")(k.Get(ctx, b+"/d", &client.GetOptions{Recursive: true, Sort: true}))
	r.Rec("set over dir")(k.Set(ctx, b+"/d", "x", nil))
	r.Rec("set dir over dir")(k.Set(ctx, b+"/d", "", &client.SetOptions{Dir: true}))
	r.Rec("set below file")(k.Set(ctx, b+"/d/x/y/z", "x", nil))
	r.Rec("get below file")(k.Get(ctx, b+"/d/x/y/z", nil))
	r.Rec("create below file")(k.Create(ctx, b+"/d/x/y/z", "x"))
	r.Rec("delete dir plain")(k.Delete(ctx, b+"/d", nil))
	r.Rec("delete dir not empty")(k.Delete(ctx, b+"/d", &client.DeleteOptions{Dir: true}))
	r.Rec("delete file")(k.Delete(ctx, b+"/d/x/y", nil))
	r.Rec("delete empty dir")(k.Delete(ctx, b+"/d/x", &client.DeleteOptions{Dir: true}))
	r.Rec("delete recursive")(k.Delete(ctx, b+"/d", &client.DeleteOptions{Recursive: true}))
	r.Rec("get deleted")(k.Get(ctx, b+"/d", nil))
	r.Rec("make dir")(k.Set(ctx, b+"/e", "", &client.SetOptions{Dir: true}))
	r.Rec("get empty dir")(k.Get(ctx, b+"/e", &client.GetOptions{Recursive: true}))
	r.Rec("create dir again")(k.Set(ctx, b+"/e", "", &client.SetOptions{Dir: true, PrevExist: client.PrevNoExist}))
	r.Rec("set file")(k.Set(ctx, b+"/f", "vf", nil))
	r.Rec("set dir over file")(k.Set(ctx, b+"/f", "", &client.SetOptions{Dir: true}))
	r.Rec("get replaced")(k.Get(ctx, b+"/f", nil))
	r.Rec("delete file as dir")(k.Set(ctx, b+"/g", "vg", nil))
	r.Rec("delete with dir flag")(k.Delete(ctx, b+"/g", &client.DeleteOptions{Dir: true}))
	r.Rec("list")(k.Get(ctx, b, &client.GetOptions{Recursive: true, Sort: true}))
}

func conditions(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	s := r.Rec("set")(k.Set(ctx, b+"/c", "v1", nil))
	var idx uint64
	if s != nil {
		idx = s.Node.ModifiedIndex
	}
	r.Rec("cas wrong value")(k.Set(ctx, b+"/c", "v2", &client.SetOptions{PrevValue: "no"}))
	r.Rec("cas wrong index")(k.Set(ctx, b+"/c", "v2", &client.SetOptions{PrevIndex: idx + 1000}))
	r.Rec("cas both wrong")(k.Set(ctx, b+"/c", "v2", &client.SetOptions{PrevValue: "no", PrevIndex: idx + 1000}))
	r.Rec("cas value")(k.Set(ctx, b+"/c", "v2", &client.SetOptions{PrevValue: "v1"}))
	r.Rec("cas stale index")(k.Set(ctx, b+"/c", "v3", &client.SetOptions{PrevIndex: idx}))
	r.Rec("cas missing")(k.Set(ctx, b+"/nope", "v", &client.SetOptions{PrevValue: "x"}))
	r.Rec("cas prevExist value")(k.Set(ctx, b+"/c", "v3", &client.SetOptions{PrevExist: client.PrevExist, PrevValue: "v2"}))
	r.Rec("create ignores prevValue")(k.Set(ctx, b+"/n", "vn", &client.SetOptions{PrevExist: client.PrevNoExist, PrevValue: "zz"}))
	r.Rec("cad wrong value")(k.Delete(ctx, b+"/c", &client.DeleteOptions{PrevValue: "no"}))
	r.Rec("cad wrong index")(k.Delete(ctx, b+"/c", &client.DeleteOptions{PrevIndex: idx + 1000}))
	r.Rec("mkdir")(k.Set(ctx, b+"/dir", "", &client.SetOptions{Dir: true}))
	r.Rec("cas dir")(k.Set(ctx, b+"/dir", "x", &client.SetOptions{PrevValue: "y"}))
	r.Rec("update dir with value")(k.Update(ctx, b+"/dir", "x"))
	r.Rec("cad dir")(k.Delete(ctx, b+"/dir", &client.DeleteOptions{PrevValue: "y"}))
	r.Rec("cad")(k.Delete(ctx, b+"/c", &client.DeleteOptions{PrevValue: "v3"}))
}

func hidden(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	r.Rec("set hidden")(k.Set(ctx, b+"/h/_x", "hx", nil))
	r.Rec("set visible")(k.Set(ctx, b+"/h/y", "vy", nil))
	r.Rec("set in hidden dir")(k.Set(ctx, b+"/h/_d/z", "vz", nil))
	r.Rec("set hidden deep")(k.Set(ctx, b+"/h/v/_w", "vw", nil))
	r.Rec("list")(k.Get(ctx, b+"/h", &client.GetOptions{Recursive: true, Sort: true}))
	r.Rec("list one level")(k.Get(ctx, b+"/h", &client.GetOptions{Sort: true}))
	r.Rec("get hidden")(k.Get(ctx, b+"/h/_x", nil))
	r.Rec("list hidden dir")(k.Get(ctx, b+"/h/_d", &client.GetOptions{Recursive: true, Sort: true}))
	r.Rec("delete dir with only hidden")(k.Delete(ctx, b+"/h/v", &client.DeleteOptions{Dir: true}))
}

func ttl(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	r.Rec("set ttl")(k.Set(ctx, b+"/t", "v", &client.SetOptions{TTL: 30 * time.Second}))
	r.Rec("get ttl")(k.Get(ctx, b+"/t", nil))
	r.Rec("refresh")(k.Set(ctx, b+"/t", "", &client.SetOptions{TTL: 60 * time.Second, Refresh: true}))
	r.Rec("get refreshed")(k.Get(ctx, b+"/t", nil))
	r.Rec("refresh missing")(k.Set(ctx, b+"/nope", "", &client.SetOptions{TTL: 60 * time.Second, Refresh: true}))
	r.Rec("refresh with value")(k.Set(ctx, b+"/t", "x", &client.SetOptions{TTL: 60 * time.Second, Refresh: true}))
	r.Rec("update keeps no ttl")(k.Update(ctx, b+"/t", "v2"))
	r.Rec("get permanent")(k.Get(ctx, b+"/t", nil))
	r.Rec("ttl below a second")(k.Set(ctx, b+"/t", "v", &client.SetOptions{TTL: time.Millisecond}))
	r.Rec("dir with ttl")(k.Set(ctx, b+"/td", "", &client.SetOptions{Dir: true, TTL: 30 * time.Second}))
	r.Rec("child of ttl dir")(k.Set(ctx, b+"/td/k", "v", nil))
	r.Rec("get ttl dir")(k.Get(ctx, b+"/td", &client.GetOptions{Recursive: true}))
}

func inorder(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	r.Rec("first")(k.CreateInOrder(ctx, b+"/q", "a", nil))
	r.Rec("second")(k.CreateInOrder(ctx, b+"/q", "b", nil))
	r.Rec("third ttl")(k.CreateInOrder(ctx, b+"/q", "c", &client.CreateInOrderOptions{TTL: 30 * time.Second}))
	r.Rec("list")(k.Get(ctx, b+"/q", &client.GetOptions{Recursive: true, Sort: true}))
	r.Rec("file")(k.Set(ctx, b+"/f", "v", nil))
	r.Rec("under file")(k.CreateInOrder(ctx, b+"/f", "x", nil))
}

func watch(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	first := r.Rec("set")(k.Set(ctx, b+"/w/k", "v1", nil))
	r.Rec("update")(k.Update(ctx, b+"/w/k", "v2"))
	r.Rec("set deep")(k.Set(ctx, b+"/w/a/b", "vb", nil))
	r.Rec("refresh")(k.Set(ctx, b+"/w/k", "", &client.SetOptions{TTL: 60 * time.Second, Refresh: true}))
	r.Rec("cas")(k.Set(ctx, b+"/w/k", "v3", &client.SetOptions{PrevValue: "v2"}))
	r.Rec("delete dir")(k.Delete(ctx, b+"/w/a", &client.DeleteOptions{Recursive: true}))
	r.Rec("cad")(k.Delete(ctx, b+"/w/k", &client.DeleteOptions{PrevValue: "v3"}))
	last := r.Rec("last")(k.Set(ctx, b+"/w/z", "vz", nil))
	r.Rec("hidden")(k.Set(ctx, b+"/w/_h", "vh", nil))
	if first == nil || last == nil {
		return
	}
	after := first.Index - 1
	next := func(name string, w client.Watcher, n int) {
		for i := 0; i < n; i++ {
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			r.Rec(name)(w.Next(wctx))
			cancel()
		}
	}
	next("watch key", k.Watcher(b+"/w/k", &client.WatcherOptions{AfterIndex: after}), 3)
	next("watch recursive", k.Watcher(b+"/w", &client.WatcherOptions{AfterIndex: after, Recursive: true}), 6)
	next("watch below deleted dir", k.Watcher(b+"/w/a/b", &client.WatcherOptions{AfterIndex: after}), 2)
	// A recursive watch from history after the last visible write: v2's
	// history scan returns the hidden key's event.
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	r.Rec("watch hidden from history")(k.Watcher(b+"/w", &client.WatcherOptions{AfterIndex: last.Index, Recursive: true}).Next(hctx))
}

func expire(ctx context.Context, k client.KeysAPI, b string, r *Recorder) {
	s := r.Rec("set ttl")(k.Set(ctx, b+"/x/k", "v", &client.SetOptions{TTL: time.Second}))
	if s == nil {
		return
	}
	w := k.Watcher(b+"/x", &client.WatcherOptions{AfterIndex: s.Index, Recursive: true})
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ev, err := w.Next(wctx)
	if ev != nil && ev.PrevNode != nil {
		ev.PrevNode.TTL, ev.PrevNode.Expiration = 0, nil // remaining time at expiry varies
	}
	r.Rec("watch expire")(ev, err)
	r.Rec("get expired")(k.Get(ctx, b+"/x/k", nil))
}
