package v2fake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// watchTimeout is how long etcd holds a long poll before ending it empty.
const watchTimeout = 5 * time.Minute

type keyRequest struct {
	method                                      string
	path                                        string
	value, prevValue                            string
	prevIndex, waitIndex                        uint64
	recursive, sorted, wait, dir, stream, noVal bool
	quorum                                      bool
	prevExist, refresh                          *bool
	expire                                      time.Time
	hasTTL                                      bool
}

func getBool(f url.Values, k string) (bool, bool) {
	if v, ok := f[k]; ok {
		b, err := strconv.ParseBool(v[0])
		return b, err == nil
	}
	return false, true
}

func getUint(f url.Values, k string) (uint64, bool) {
	if v, ok := f[k]; ok {
		i, err := strconv.ParseUint(v[0], 10, 64)
		return i, err == nil
	}
	return 0, true
}

// parseKeyRequest reads the form as etcd 3.5 does, with its errors.
func (s *Server) parseKeyRequest(r *http.Request) (*keyRequest, *Error) {
	if err := r.ParseForm(); err != nil {
		return nil, newError(210, err.Error(), 0)
	}
	q := &keyRequest{method: r.Method, path: cleanPath(strings.TrimPrefix(r.URL.Path, "/v2/keys"))}
	var ok bool
	if q.prevIndex, ok = getUint(r.Form, "prevIndex"); !ok {
		return nil, newError(203, `invalid value for "prevIndex"`, 0)
	}
	if q.waitIndex, ok = getUint(r.Form, "waitIndex"); !ok {
		return nil, newError(203, `invalid value for "waitIndex"`, 0)
	}
	for _, b := range []struct {
		name string
		to   *bool
	}{{"recursive", &q.recursive}, {"sorted", &q.sorted}, {"wait", &q.wait}, {"dir", &q.dir}, {"quorum", &q.quorum}, {"stream", &q.stream}} {
		if *b.to, ok = getBool(r.Form, b.name); !ok {
			return nil, newError(209, `invalid value for "`+b.name+`"`, 0)
		}
	}
	if q.wait && r.Method != http.MethodGet {
		return nil, newError(209, `"wait" can only be used with GET requests`, 0)
	}
	q.prevValue = r.FormValue("prevValue")
	if _, has := r.Form["prevValue"]; has && q.prevValue == "" {
		return nil, newError(201, `"prevValue" cannot be empty`, 0)
	}
	if q.noVal, ok = getBool(r.Form, "noValueOnSuccess"); !ok {
		return nil, newError(209, `invalid value for "noValueOnSuccess"`, 0)
	}
	var ttl uint64
	if r.FormValue("ttl") != "" {
		if ttl, ok = getUint(r.Form, "ttl"); !ok {
			return nil, newError(202, `invalid value for "ttl"`, 0)
		}
		q.hasTTL = true
	}
	if _, has := r.Form["prevExist"]; has {
		b, ok := getBool(r.Form, "prevExist")
		if !ok {
			return nil, newError(209, "invalid value for prevExist", 0)
		}
		q.prevExist = &b
	}
	if _, has := r.Form["refresh"]; has {
		b, ok := getBool(r.Form, "refresh")
		if !ok {
			return nil, newError(209, "invalid value for refresh", 0)
		}
		q.refresh = &b
		if b {
			if _, has := r.Form["value"]; has && r.FormValue("value") != "" {
				return nil, newError(211, "A value was provided on a refresh", 0)
			}
			if !q.hasTTL {
				return nil, newError(212, "No TTL value set", 0)
			}
		}
	}
	q.value = r.FormValue("value")
	if q.hasTTL {
		q.expire = s.opts.Now().Add(time.Duration(ttl) * time.Second)
	}
	return q, nil
}

func writeKeyError(w http.ResponseWriter, e *Error) {
	w.Header().Add("X-Etcd-Index", strconv.FormatUint(e.Index, 10))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status())
	b, _ := json.Marshal(e)
	w.Write(append(b, '\n'))
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "HEAD", "GET", "PUT", "POST", "DELETE") {
		return
	}
	s.setClusterHeader(w)
	q, kerr := s.parseKeyRequest(r)
	if kerr != nil {
		writeKeyError(w, kerr)
		return
	}
	if !s.keyAccess(r, q.path, q.recursive) {
		writeKeyError(w, newError(110, "Insufficient credentials", 0))
		return
	}
	s.mu.Lock()
	if s.leader == "" && !q.wait && (q.quorum || r.Method != http.MethodGet && r.Method != http.MethodHead) {
		s.mu.Unlock()
		writeKeyError(w, newError(300, "etcdserver: request timed out", 0))
		return
	}
	s.store.expire()
	if q.wait {
		s.watch(w, r, q) // unlocks
		return
	}
	ev, kerr := s.apply(q)
	term, raftIndex := s.term, s.store.index+100
	s.mu.Unlock()
	if kerr != nil {
		writeKeyError(w, kerr)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Index", strconv.FormatUint(ev.etcdIndex, 10))
	h.Set("X-Raft-Index", strconv.FormatUint(raftIndex, 10))
	h.Set("X-Raft-Term", strconv.FormatUint(term, 10))
	if ev.Action == "create" || ev.Action == "set" && ev.PrevNode == nil {
		w.WriteHeader(http.StatusCreated)
	}
	out := *ev
	if q.noVal && (ev.Action == "set" || ev.Action == "compareAndSwap" || ev.Action == "create" || ev.Action == "update") {
		out.Node, out.PrevNode = nil, nil
	}
	json.NewEncoder(w).Encode(out)
}

// apply runs a request that is not a watch; s.mu is held.
func (s *Server) apply(q *keyRequest) (*Event, *Error) {
	st := s.store
	var ttl time.Time
	if q.hasTTL {
		ttl = q.expire
	}
	refresh := q.refresh != nil && *q.refresh
	switch q.method {
	case http.MethodGet, http.MethodHead:
		return st.get(q.path, q.recursive, q.sorted)
	case http.MethodPost:
		ev, err := st.create(q.path, q.dir, q.value, true, false, ttl, "create")
		if err == nil {
			ev.etcdIndex = st.index
			st.record(ev)
		}
		return ev, err
	case http.MethodDelete:
		if q.prevIndex > 0 || q.prevValue != "" {
			return st.compareAndDelete(q.path, q.prevValue, q.prevIndex)
		}
		return st.delete(q.path, q.dir, q.recursive)
	}
	// PUT
	switch {
	case q.prevExist != nil && *q.prevExist:
		if q.prevIndex == 0 && q.prevValue == "" {
			return st.update(q.path, q.value, ttl, refresh)
		}
		return st.compareAndSwap(q.path, q.prevValue, q.prevIndex, q.value, ttl, refresh)
	case q.prevExist != nil:
		ev, err := st.create(q.path, q.dir, q.value, false, false, ttl, "create")
		if err == nil {
			st.record(ev)
		}
		return ev, err
	case q.prevIndex > 0 || q.prevValue != "":
		return st.compareAndSwap(q.path, q.prevValue, q.prevIndex, q.value, ttl, refresh)
	}
	return st.set(q.path, q.dir, q.value, ttl, refresh)
}

// watch answers a long poll; s.mu is held on entry and released.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, q *keyRequest) {
	st := s.store
	since := q.waitIndex
	if since == 0 {
		since = st.index + 1
	}
	ev, kerr := st.scan(q.path, q.recursive, since)
	start, term, raftIndex := st.index, s.term, st.index+100
	if kerr != nil {
		s.mu.Unlock()
		writeKeyError(w, kerr)
		return
	}
	changed := st.changed
	s.watches++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.watches--
		s.mu.Unlock()
	}()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Etcd-Index", strconv.FormatUint(start, 10))
	h.Set("X-Raft-Index", strconv.FormatUint(raftIndex, 10))
	h.Set("X-Raft-Term", strconv.FormatUint(term, 10))
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	enc := json.NewEncoder(w)
	if ev != nil {
		if !s.waitHeld(r) {
			return
		}
		enc.Encode(ev)
		if !q.stream {
			return
		}
	}
	timeout := time.NewTimer(watchTimeout)
	defer timeout.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-timeout.C:
			return
		case <-changed:
		}
		s.mu.Lock()
		var found []*Event
		for _, e := range st.history {
			if e.Node.ModifiedIndex > start && e.Node.ModifiedIndex >= since && !e.Refresh && notifies(e, q.path, q.recursive) {
				found = append(found, e)
			}
		}
		if len(st.history) > 0 {
			start = st.history[len(st.history)-1].Node.ModifiedIndex
		}
		changed = st.changed
		s.mu.Unlock()
		if len(found) > 0 && !s.waitHeld(r) {
			return
		}
		for _, e := range found {
			enc.Encode(e)
			if !q.stream {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}
