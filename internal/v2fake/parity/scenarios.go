package parity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/etcdv2/client"
)

// Scenarios is the shared list. Each works below its own directory, so
// that the scenarios can run one after the other on one member; the auth
// scenario leaves auth disabled and its users and roles removed.
var Scenarios = []Scenario{
	{Name: "get-set", Run: getSet},
	{Name: "create-update", Run: createUpdate},
	{Name: "compare-and-swap", Run: compareAndSwap},
	{Name: "compare-and-delete", Run: compareAndDelete},
	{Name: "dirs", Run: dirs},
	{Name: "root", Run: root},
	{Name: "in-order", Run: inOrder},
	{Name: "hidden", Run: hiddenKeys},
	{Name: "ttl", Run: ttl},
	{Name: "ttl-expiry", Slow: true, Run: ttlExpiry},
	{Name: "form-errors", Run: formErrors},
	{Name: "watch", Run: watch},
	{Name: "watch-cleared", Slow: true, Run: watchCleared},
	{Name: "members", Run: members},
	{Name: "auth", Run: auth},
	{Name: "version-health", Run: versionHealth},
}

// NoLeader runs against a member that has lost its leader (on the fake,
// after SetLeader("")): writes fail, local reads still answer. A write
// takes etcd's request timeout (5 s plus two election timeouts) on a real
// member.
var NoLeader = Scenario{Name: "no-leader", Slow: true, Run: noLeader}

func noLeader(ctx context.Context, r *Recorder) error {
	for _, step := range []struct{ name, method, path, form string }{
		{"leader", "GET", "/v2/members/leader", ""},
		{"health", "GET", "/health", ""},
		{"local read", "GET", "/v2/keys/nl", ""},
		{"write", "PUT", "/v2/keys/nl/a", "value=1"},
		{"quorum read", "GET", "/v2/keys/nl", "quorum=true"},
	} {
		if err := r.Raw(ctx, step.name, step.method, step.path, step.form, nil); err != nil {
			return err
		}
	}
	return nil
}

func getSet(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Set(ctx, "/gs/a", "1", nil)
	r.KeysResult("set new", resp, err)
	resp, err = k.Set(ctx, "/gs/a", "2", nil)
	r.KeysResult("set again", resp, err)
	resp, err = k.Get(ctx, "/gs/a", nil)
	r.KeysResult("get", resp, err)
	resp, err = k.Set(ctx, "/gs/empty", "", nil)
	r.KeysResult("set empty value", resp, err)
	resp, err = k.Get(ctx, "/gs/missing", nil)
	r.KeysResult("get missing", resp, err)
	resp, err = k.Get(ctx, "/gs/a/below", nil)
	r.KeysResult("get below a file", resp, err)
	resp, err = k.Set(ctx, "/gs/a/below", "x", nil)
	r.KeysResult("set below a file", resp, err)
	resp, err = k.Set(ctx, "/gs/odd key ü?#&", "v=1&x", nil)
	r.KeysResult("set odd key", resp, err)
	resp, err = k.Get(ctx, "/gs/odd key ü?#&", nil)
	r.KeysResult("get odd key", resp, err)
	resp, err = k.Get(ctx, "/gs/a", &client.GetOptions{Quorum: true})
	r.KeysResult("quorum get", resp, err)
	for _, step := range []struct{ name, method, path, form string }{
		{"raw get", "GET", "/v2/keys/gs/a", ""},
		{"raw get missing", "GET", "/v2/keys/gs/missing", ""},
		{"raw set", "PUT", "/v2/keys/gs/b", "value=x"},
		{"raw set again", "PUT", "/v2/keys/gs/b", "value=y"},
		{"raw no value on success", "PUT", "/v2/keys/gs/b", "value=z&noValueOnSuccess=true"},
		{"raw head", "HEAD", "/v2/keys/gs/a", ""},
		{"raw delete", "DELETE", "/v2/keys/gs/b", ""},
		{"raw bad method", "PATCH", "/v2/keys/gs/a", ""},
	} {
		if err := r.Raw(ctx, step.name, step.method, step.path, step.form, nil); err != nil {
			return err
		}
	}
	return nil
}

func createUpdate(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Create(ctx, "/cu/a", "1")
	r.KeysResult("create", resp, err)
	resp, err = k.Create(ctx, "/cu/a", "2")
	r.KeysResult("create existing", resp, err)
	resp, err = k.Update(ctx, "/cu/a", "3")
	r.KeysResult("update", resp, err)
	resp, err = k.Update(ctx, "/cu/missing", "3")
	r.KeysResult("update missing", resp, err)
	resp, err = k.Set(ctx, "/cu/b", "1", &client.SetOptions{PrevExist: client.PrevNoExist})
	r.KeysResult("set prevExist=false", resp, err)
	resp, err = k.Set(ctx, "/cu/b", "2", &client.SetOptions{PrevExist: client.PrevExist})
	r.KeysResult("set prevExist=true", resp, err)
	resp, err = k.Set(ctx, "/cu/d", "", &client.SetOptions{Dir: true})
	r.KeysResult("make dir", resp, err)
	resp, err = k.Update(ctx, "/cu/d", "v")
	r.KeysResult("update dir with a value", resp, err)
	resp, err = k.Create(ctx, "/cu/d", "v")
	r.KeysResult("create over a dir", resp, err)
	return r.Raw(ctx, "raw create existing", "PUT", "/v2/keys/cu/a", "value=x&prevExist=false", nil)
}

func compareAndSwap(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Set(ctx, "/cas/a", "one", nil)
	r.KeysResult("set", resp, err)
	if err != nil {
		return err
	}
	idx := resp.Node.ModifiedIndex
	resp, err = k.Set(ctx, "/cas/a", "two", &client.SetOptions{PrevValue: "one"})
	r.KeysResult("cas value ok", resp, err)
	resp, err = k.Set(ctx, "/cas/a", "three", &client.SetOptions{PrevValue: "one"})
	r.KeysResult("cas value fails", resp, err)
	resp, err = k.Set(ctx, "/cas/a", "three", &client.SetOptions{PrevIndex: idx})
	r.KeysResult("cas index fails", resp, err)
	resp, err = k.Set(ctx, "/cas/a", "three", &client.SetOptions{PrevIndex: idx + 1})
	r.KeysResult("cas index ok", resp, err)
	resp, err = k.Set(ctx, "/cas/a", "four", &client.SetOptions{PrevIndex: idx, PrevValue: "nope"})
	r.KeysResult("cas both fail", resp, err)
	resp, err = k.Set(ctx, "/cas/a", "four", &client.SetOptions{PrevValue: "three", PrevExist: client.PrevExist})
	r.KeysResult("cas with prevExist", resp, err)
	resp, err = k.Set(ctx, "/cas/missing", "x", &client.SetOptions{PrevValue: "one"})
	r.KeysResult("cas missing", resp, err)
	resp, err = k.Set(ctx, "/cas/d", "", &client.SetOptions{Dir: true})
	r.KeysResult("make dir", resp, err)
	resp, err = k.Set(ctx, "/cas/d", "x", &client.SetOptions{PrevValue: "one"})
	r.KeysResult("cas dir", resp, err)
	return r.Raw(ctx, "raw cas fails", "PUT", "/v2/keys/cas/a", "value=x&prevValue=nope", nil)
}

func compareAndDelete(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Set(ctx, "/cad/a", "one", nil)
	r.KeysResult("set", resp, err)
	if err != nil {
		return err
	}
	idx := resp.Node.ModifiedIndex
	resp, err = k.Delete(ctx, "/cad/a", &client.DeleteOptions{PrevValue: "two"})
	r.KeysResult("cad value fails", resp, err)
	resp, err = k.Delete(ctx, "/cad/a", &client.DeleteOptions{PrevIndex: idx + 7})
	r.KeysResult("cad index fails", resp, err)
	resp, err = k.Delete(ctx, "/cad/a", &client.DeleteOptions{PrevValue: "one", PrevIndex: idx})
	r.KeysResult("cad ok", resp, err)
	resp, err = k.Delete(ctx, "/cad/a", &client.DeleteOptions{PrevValue: "one"})
	r.KeysResult("cad missing", resp, err)
	resp, err = k.Set(ctx, "/cad/d", "", &client.SetOptions{Dir: true})
	r.KeysResult("make dir", resp, err)
	resp, err = k.Delete(ctx, "/cad/d", &client.DeleteOptions{PrevValue: "x"})
	r.KeysResult("cad dir", resp, err)
	return nil
}

func dirs(ctx context.Context, r *Recorder) error {
	k := r.Keys
	for _, key := range []string{"/dirs/b", "/dirs/a", "/dirs/sub/y", "/dirs/sub/x", "/dirs/sub/deeper/z"} {
		resp, err := k.Set(ctx, key, "v"+key, nil)
		r.KeysResult("set "+key, resp, err)
	}
	resp, err := k.Set(ctx, "/dirs/emptydir", "", &client.SetOptions{Dir: true})
	r.KeysResult("make empty dir", resp, err)
	resp, err = k.Set(ctx, "/dirs/emptydir", "", &client.SetOptions{Dir: true})
	r.KeysResult("make dir again", resp, err)
	resp, err = k.Get(ctx, "/dirs", &client.GetOptions{Sort: true})
	r.KeysResult("list sorted", resp, err)
	resp, err = k.Get(ctx, "/dirs", &client.GetOptions{Sort: true, Recursive: true})
	r.KeysResult("list recursive sorted", resp, err)
	resp, err = k.Set(ctx, "/dirs/sub", "v", nil)
	r.KeysResult("set over a dir", resp, err)
	resp, err = k.Delete(ctx, "/dirs/sub", nil)
	r.KeysResult("delete dir as file", resp, err)
	resp, err = k.Delete(ctx, "/dirs/sub", &client.DeleteOptions{Dir: true})
	r.KeysResult("delete non-empty dir", resp, err)
	resp, err = k.Delete(ctx, "/dirs/emptydir", &client.DeleteOptions{Dir: true})
	r.KeysResult("delete empty dir", resp, err)
	resp, err = k.Delete(ctx, "/dirs/a", &client.DeleteOptions{Dir: true})
	r.KeysResult("delete file with dir=true", resp, err)
	resp, err = k.Delete(ctx, "/dirs/sub", &client.DeleteOptions{Recursive: true})
	r.KeysResult("delete recursive", resp, err)
	resp, err = k.Get(ctx, "/dirs", &client.GetOptions{Recursive: true, Sort: true})
	r.KeysResult("list after", resp, err)
	if err := r.Raw(ctx, "raw list", "GET", "/v2/keys/dirs", "recursive=true&sorted=true", nil); err != nil {
		return err
	}
	return r.Raw(ctx, "raw delete dir as file", "DELETE", "/v2/keys/dirs", "", nil)
}

func root(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Set(ctx, "/", "v", nil)
	r.KeysResult("set root", resp, err)
	resp, err = k.Delete(ctx, "/", &client.DeleteOptions{Recursive: true})
	r.KeysResult("delete root", resp, err)
	resp, err = k.Update(ctx, "/", "v")
	r.KeysResult("update root", resp, err)
	resp, err = k.Set(ctx, "/", "v", &client.SetOptions{PrevValue: "x"})
	r.KeysResult("cas root", resp, err)
	resp, err = k.CreateInOrder(ctx, "/", "v", nil)
	if err == nil { // a key at the root: remove it so the root stays as it was
		_, _ = k.Delete(ctx, resp.Node.Key, nil)
		resp.Node.Key = "<root in-order key>"
	}
	r.KeysResult("in-order at root", resp, err)
	return r.Raw(ctx, "raw delete root", "DELETE", "/v2/keys/", "recursive=true", nil)
}

func inOrder(ctx context.Context, r *Recorder) error {
	k := r.Keys
	for i := 0; i < 3; i++ {
		resp, err := k.CreateInOrder(ctx, "/queue", fmt.Sprint("job", i), nil)
		r.KeysResult(fmt.Sprint("enqueue ", i), resp, err)
	}
	resp, err := k.CreateInOrder(ctx, "/queue", "ttl job", &client.CreateInOrderOptions{TTL: time.Minute})
	r.KeysResult("enqueue with ttl", resp, err)
	resp, err = k.Get(ctx, "/queue", &client.GetOptions{Sort: true})
	r.KeysResult("list", resp, err)
	resp, err = k.Set(ctx, "/queuefile", "x", nil)
	r.KeysResult("set a file", resp, err)
	resp, err = k.CreateInOrder(ctx, "/queuefile", "y", nil)
	r.KeysResult("enqueue below a file", resp, err)
	return r.Raw(ctx, "raw enqueue", "POST", "/v2/keys/queue", "value=raw", nil)
}

func hiddenKeys(ctx context.Context, r *Recorder) error {
	k := r.Keys
	for _, key := range []string{"/hid/_hidden", "/hid/visible", "/hid/_hdir/x"} {
		resp, err := k.Set(ctx, key, "v", nil)
		r.KeysResult("set "+key, resp, err)
	}
	resp, err := k.Get(ctx, "/hid", &client.GetOptions{Recursive: true, Sort: true})
	r.KeysResult("list", resp, err)
	resp, err = k.Get(ctx, "/hid/_hidden", nil)
	r.KeysResult("get hidden", resp, err)
	resp, err = k.Get(ctx, "/hid/_hdir", &client.GetOptions{Recursive: true})
	r.KeysResult("list hidden dir", resp, err)
	// A hidden key from the history is sent to a recursive watch.
	w := k.Watcher("/hid", &client.WatcherOptions{AfterIndex: r.Base(), Recursive: true, ProbeInterval: -1})
	resp, err = w.Next(ctx)
	r.KeysResult("watch from history", resp, err)
	// A registered recursive watch is not told of a hidden key.
	return r.RawWatch(ctx, "live watch", "/v2/keys/hid", "wait=true&recursive=true", func() error {
		if _, err := k.Set(ctx, "/hid/_later", "v", nil); err != nil {
			return err
		}
		_, err := k.Set(ctx, "/hid/later", "v", nil)
		return err
	})
}

func ttl(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Set(ctx, "/ttl/a", "v", &client.SetOptions{TTL: 100 * time.Second})
	r.KeysResult("set with ttl", resp, err)
	resp, err = k.Get(ctx, "/ttl/a", nil)
	r.KeysResult("get", resp, err)
	resp, err = k.Set(ctx, "/ttl/a", "", &client.SetOptions{TTL: 200 * time.Second, Refresh: true, PrevExist: client.PrevExist})
	r.KeysResult("refresh", resp, err)
	resp, err = k.Get(ctx, "/ttl/a", nil)
	r.KeysResult("get after refresh", resp, err)
	resp, err = k.Set(ctx, "/ttl/a", "w", nil)
	r.KeysResult("set without ttl", resp, err)
	resp, err = k.Set(ctx, "/ttl/d", "", &client.SetOptions{Dir: true, TTL: 100 * time.Second})
	r.KeysResult("dir with ttl", resp, err)
	resp, err = k.Set(ctx, "/ttl/d/x", "v", nil)
	r.KeysResult("set in it", resp, err)
	resp, err = k.Get(ctx, "/ttl/d", &client.GetOptions{Recursive: true})
	r.KeysResult("list", resp, err)
	resp, err = k.Set(ctx, "/ttl/missing", "", &client.SetOptions{TTL: 10 * time.Second, Refresh: true})
	r.KeysResult("refresh missing", resp, err)
	if err := r.Raw(ctx, "raw refresh", "PUT", "/v2/keys/ttl/a", "ttl=50&refresh=true&prevExist=true", nil); err != nil {
		return err
	}
	return r.Raw(ctx, "raw refresh via set", "PUT", "/v2/keys/ttl/a", "ttl=50&refresh=true", nil)
}

func ttlExpiry(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Set(ctx, "/exp/a", "v", &client.SetOptions{TTL: time.Second})
	r.KeysResult("set ttl 1s", resp, err)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := k.Get(ctx, "/exp/a", nil)
		if client.IsKeyNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the key did not expire within 10s")
		}
		time.Sleep(100 * time.Millisecond) // polling the server's expiry, which nothing announces to a reader
	}
	r.Note("expired", "yes")
	w := k.Watcher("/exp/a", &client.WatcherOptions{AfterIndex: resp.Node.ModifiedIndex, ProbeInterval: -1})
	resp, err = w.Next(ctx)
	r.KeysResult("expire event", resp, err)
	return nil
}

func formErrors(ctx context.Context, r *Recorder) error {
	for _, step := range []struct{ name, method, path, form string }{
		{"recursive not a bool", "GET", "/v2/keys/fe", "recursive=maybe"},
		{"sorted not a bool", "GET", "/v2/keys/fe", "sorted=2"},
		{"wait on a PUT", "PUT", "/v2/keys/fe/a", "value=1&wait=true"},
		{"waitIndex not a number", "GET", "/v2/keys/fe", "wait=true&waitIndex=x"},
		{"prevIndex not a number", "PUT", "/v2/keys/fe/a", "value=1&prevIndex=-1"},
		{"ttl not a number", "PUT", "/v2/keys/fe/a", "value=1&ttl=abc"},
		{"empty prevValue", "PUT", "/v2/keys/fe/a", "value=1&prevValue="},
		{"prevExist not a bool", "PUT", "/v2/keys/fe/a", "value=1&prevExist=yes"},
		{"refresh with a value", "PUT", "/v2/keys/fe/a", "value=1&refresh=true&ttl=5"},
		{"refresh without ttl", "PUT", "/v2/keys/fe/a", "refresh=true"},
		{"dir not a bool", "PUT", "/v2/keys/fe/a", "dir=x"},
		{"bad form", "PUT", "/v2/keys/fe/a", "value=%zz"},
	} {
		if err := r.Raw(ctx, step.name, step.method, step.path, step.form, nil); err != nil {
			return err
		}
	}
	return nil
}

func watch(ctx context.Context, r *Recorder) error {
	k := r.Keys
	resp, err := k.Set(ctx, "/w/a", "1", nil)
	r.KeysResult("set", resp, err)
	if err != nil {
		return err
	}
	first := resp.Node.ModifiedIndex
	resp, err = k.Set(ctx, "/w/b", "1", nil)
	r.KeysResult("set other", resp, err)
	resp, err = k.Delete(ctx, "/w/a", nil)
	r.KeysResult("delete", resp, err)
	w := k.Watcher("/w/a", &client.WatcherOptions{AfterIndex: first - 1, ProbeInterval: -1})
	for i := 0; i < 2; i++ {
		resp, err = w.Next(ctx)
		r.KeysResult(fmt.Sprint("watch key from history ", i), resp, err)
	}
	w = k.Watcher("/w", &client.WatcherOptions{AfterIndex: first, Recursive: true, ProbeInterval: -1})
	resp, err = w.Next(ctx)
	r.KeysResult("watch dir from history", resp, err)
	if err := r.RawWatch(ctx, "live watch", "/v2/keys/w/c", "wait=true", func() error {
		_, err := k.Set(ctx, "/w/c", "live", nil)
		return err
	}); err != nil {
		return err
	}
	if err := r.RawWatch(ctx, "watch of a key in a deleted dir", "/v2/keys/w/sub/x", "wait=true", func() error {
		if _, err := k.Set(ctx, "/w/sub/x", "v", nil); err != nil {
			return err
		}
		return nil
	}); err != nil {
		return err
	}
	if err := r.RawWatch(ctx, "deleted dir", "/v2/keys/w/sub/x", "wait=true", func() error {
		_, err := k.Delete(ctx, "/w/sub", &client.DeleteOptions{Recursive: true})
		return err
	}); err != nil {
		return err
	}
	return r.Raw(ctx, "raw watch from history", "GET", "/v2/keys/w/a", fmt.Sprintf("wait=true&waitIndex=%d", first), nil)
}

// watchCleared writes past the history (1000 events) and watches from
// before it.
func watchCleared(ctx context.Context, r *Recorder) error {
	k := r.Keys
	const writers, each = 4, 260
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := k.Set(ctx, fmt.Sprintf("/wc/%d", g), fmt.Sprint(i), nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	w := k.Watcher("/wc/0", &client.WatcherOptions{AfterIndex: r.Base(), ProbeInterval: -1})
	resp, err := w.Next(ctx)
	var ke client.Error
	if errors.As(err, &ke) && ke.Code == client.ErrorCodeEventIndexCleared {
		// The cause names the oldest index kept, which depends on the
		// writers' interleaving only through the total count.
		r.Note("watch before the history", fmt.Sprintf("error %d %q index %s", ke.Code, ke.Message, r.rel(fmt.Sprint(ke.Index))))
	} else {
		r.KeysResult("watch before the history", resp, err)
	}
	return r.Raw(ctx, "raw watch before the history", "GET", "/v2/keys/wc/0", fmt.Sprintf("wait=true&waitIndex=%d", r.Base()+1), nil)
}

func members(ctx context.Context, r *Recorder) error {
	m := client.NewMembersAPI(r.T.Client)
	ms, err := m.List(ctx)
	r.Value("list", ms, err)
	if err != nil || len(ms) == 0 {
		return fmt.Errorf("no members: %v", err)
	}
	self := ms[0]
	l, err := m.Leader(ctx)
	r.Value("leader", l, err)
	r.Err("update self, same URLs", m.Update(ctx, self.ID, self.PeerURLs))
	r.Err("update unknown", m.Update(ctx, "1234", []string{"http://127.0.0.1:1"}))
	r.Err("remove unknown", m.Remove(ctx, "1234"))
	added, err := m.Add(ctx, self.PeerURLs[0])
	r.Value("add existing peer URL", added, err)
	for _, step := range []struct{ name, method, path, form string }{
		{"raw list", "GET", "/v2/members", ""},
		{"raw leader", "GET", "/v2/members/leader", ""},
		{"raw unknown path", "GET", "/v2/members/nope", ""},
		{"raw remove bad id", "DELETE", "/v2/members/xyz", ""},
		{"raw remove no id", "DELETE", "/v2/members", ""},
		{"raw add wrong content type", "POST", "/v2/members", "peerURLs=x"},
		{"raw bad method", "PATCH", "/v2/members", ""},
	} {
		if err := r.Raw(ctx, step.name, step.method, step.path, step.form, nil); err != nil {
			return err
		}
	}
	return nil
}

func basic(user, pass string) http.Header {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header
}

func auth(ctx context.Context, r *Recorder) error {
	a := client.NewAuthAPI(r.T.Client)
	users := client.NewAuthUserAPI(r.T.Client)
	roles := client.NewAuthRoleAPI(r.T.Client)
	r.Err("enable without root", a.Enable(ctx))
	r.Err("disable when disabled", a.Disable(ctx))
	list, err := users.ListUsers(ctx)
	r.Value("no users", list, err)
	rl, err := roles.ListRoles(ctx)
	r.Value("roles before", rl, err)
	r.Err("add root", users.AddUser(ctx, "root", "rootpw"))
	r.Err("add root again", users.AddUser(ctx, "root", "rootpw"))
	r.Err("add alice", users.AddUser(ctx, "alice", "alicepw"))
	r.Err("add empty password", users.AddUser(ctx, "bob", ""))
	r.Err("add role", roles.AddRole(ctx, "app"))
	r.Err("add role again", roles.AddRole(ctx, "app"))
	role, err := roles.GrantRoleKV(ctx, "app", []string{"/authz/*"}, client.ReadWritePermission)
	r.Value("grant role", role, err)
	role, err = roles.GetRole(ctx, "root")
	r.Value("get root role", role, err)
	role, err = roles.GetRole(ctx, "nope")
	r.Value("get missing role", role, err)
	u, err := users.GrantUser(ctx, "alice", []string{"app"})
	r.Value("grant user", u, err)
	u, err = users.GrantUser(ctx, "alice", []string{"app"})
	r.Value("grant user again", u, err)
	u, err = users.GetUser(ctx, "root")
	r.Value("get root", u, err)
	u, err = users.GetUser(ctx, "nobody")
	r.Value("get missing user", u, err)
	list, err = users.ListUsers(ctx)
	r.Value("users", list, err)
	if err := r.Raw(ctx, "raw users", "GET", "/v2/auth/users", "", nil); err != nil {
		return err
	}
	if err := r.Raw(ctx, "raw user", "GET", "/v2/auth/users/alice", "", nil); err != nil {
		return err
	}
	if err := r.Raw(ctx, "raw roles", "GET", "/v2/auth/roles", "", nil); err != nil {
		return err
	}
	r.Err("enable", a.Enable(ctx))
	// etcd creates its auth directories on first use, with indexes of
	// their own: count from here.
	if err := r.Rebase(ctx); err != nil {
		return err
	}
	defer func() {
		// Leave the member as it was, whatever happened.
		root := basic("root", "rootpw")
		for _, p := range []struct{ method, path string }{
			{"DELETE", "/v2/auth/enable"}, {"DELETE", "/v2/auth/users/alice"}, {"DELETE", "/v2/auth/users/root"},
			{"DELETE", "/v2/auth/roles/app"}, {"DELETE", "/v2/auth/roles/guest"},
		} {
			if resp, err := r.do(ctx, p.method, p.path, "", root); err == nil {
				resp.Body.Close()
			}
		}
	}()
	rootH, alice, wrong := basic("root", "rootpw"), basic("alice", "alicepw"), basic("alice", "nope")
	for _, step := range []struct {
		name, method, path, form string
		h                        http.Header
	}{
		{"status unauthenticated", "GET", "/v2/auth/enable", "", nil},
		{"status as root", "GET", "/v2/auth/enable", "", rootH},
		{"guest reads", "GET", "/v2/keys/authz", "", nil},
		{"revoke guest", "PUT", "/v2/auth/roles/guest", `{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}`, rootH},
		{"guest reads after revoke", "GET", "/v2/keys/authz", "", nil},
		{"wrong password", "GET", "/v2/keys/authz", "", wrong},
		{"alice writes in her prefix", "PUT", "/v2/keys/authz/a", "value=1", alice},
		{"alice reads in her prefix", "GET", "/v2/keys/authz/a", "", alice},
		{"alice lists her prefix recursively", "GET", "/v2/keys/authz", "recursive=true", alice},
		{"alice writes elsewhere", "PUT", "/v2/keys/other", "value=1", alice},
		{"root writes elsewhere", "PUT", "/v2/keys/authz/b", "value=1", rootH},
		{"members unauthenticated", "GET", "/v2/members", "", nil},
		{"members as alice", "GET", "/v2/members", "", alice},
		{"users as alice", "GET", "/v2/auth/users", "", alice},
		{"delete root while enabled", "DELETE", "/v2/auth/users/root", "", rootH},
		{"disable as alice", "DELETE", "/v2/auth/enable", "", alice},
		{"disable as root", "DELETE", "/v2/auth/enable", "", rootH},
		{"disable again", "DELETE", "/v2/auth/enable", "", rootH},
	} {
		h := step.h
		if step.method == "PUT" && step.path == "/v2/auth/roles/guest" {
			h = h.Clone()
			h.Set("Content-Type", "application/json")
		}
		if err := r.Raw(ctx, step.name, step.method, step.path, step.form, h); err != nil {
			return err
		}
	}
	u, err = users.RevokeUser(ctx, "alice", []string{"nope"})
	r.Value("revoke ungranted", u, err)
	r.Err("remove alice", users.RemoveUser(ctx, "alice"))
	r.Err("remove alice again", users.RemoveUser(ctx, "alice"))
	r.Err("remove root", users.RemoveUser(ctx, "root"))
	r.Err("remove role", roles.RemoveRole(ctx, "app"))
	r.Err("remove role again", roles.RemoveRole(ctx, "app"))
	r.Err("remove root role", roles.RemoveRole(ctx, "root"))
	r.Err("remove guest role", roles.RemoveRole(ctx, "guest"))
	return nil
}

func versionHealth(ctx context.Context, r *Recorder) error {
	if err := r.Raw(ctx, "version", "GET", "/version", "", nil); err != nil {
		return err
	}
	if err := r.Raw(ctx, "self stats", "GET", "/v2/stats/self", "", nil); err != nil {
		return err
	}
	if err := r.Raw(ctx, "health", "GET", "/health", "", nil); err != nil {
		return err
	}
	return r.Raw(ctx, "version method", "POST", "/version", "", nil)
}
