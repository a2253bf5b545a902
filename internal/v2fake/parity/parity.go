// Package parity holds the scenarios that keep the fake v2 member of
// package v2fake honest: each scenario drives a member through the client
// (and, for byte shapes, raw HTTP) and records what it saw, normalised so
// that two members of different clusters compare equal when they behave
// alike. The integration tests run every scenario against v2fake and
// against a real etcd 3.5 member and require identical records; the unit
// tests of this package run them against v2fake alone.
//
// Normalisation: indexes (createdIndex, modifiedIndex, index, X-Etcd-Index,
// in-order key names, indexes in error causes) become offsets from the
// member's index when the scenario starts ("i+3"); expirations become
// "<time>"; the member's ID, name and URLs become placeholders; the raft
// index and term and the cluster ID are recorded as present or absent.
package parity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/etcdv2/client"
)

// Target is the member a scenario runs against.
type Target struct {
	// Client is a client with the member as its only endpoint.
	Client client.Client
	// URL is the member's client URL, for raw requests.
	URL string
	// HTTP sends the raw requests; nil means http.DefaultClient.
	HTTP *http.Client
}

// Step is one observation of a scenario, normalised.
type Step struct {
	Name string
	Got  string
}

// Scenario is one script run against a member.
type Scenario struct {
	Name string
	// Slow scenarios (over a second on a real member) are left out of the
	// short runs.
	Slow bool
	Run  func(ctx context.Context, r *Recorder) error
}

// Recorder runs a scenario's requests against a Target and records the
// normalised results.
type Recorder struct {
	T     Target
	Keys  client.KeysAPI
	base  uint64
	subst *strings.Replacer
	steps []Step
}

// Run runs sc against t and returns its steps.
func Run(ctx context.Context, t Target, sc Scenario) ([]Step, error) {
	if t.HTTP == nil {
		t.HTTP = http.DefaultClient
	}
	r := &Recorder{T: t, Keys: client.NewKeysAPI(t.Client)}
	ms, err := client.NewMembersAPI(t.Client).List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the members: %w", err)
	}
	var pairs []string
	for i, m := range ms {
		for j, u := range m.ClientURLs {
			pairs = append(pairs, u, fmt.Sprintf("<client%d.%d>", i, j))
		}
		for j, u := range m.PeerURLs {
			pairs = append(pairs, u, fmt.Sprintf("<peer%d.%d>", i, j))
		}
		pairs = append(pairs, m.ID, fmt.Sprintf("<id%d>", i))
		if m.Name != "" {
			pairs = append(pairs, `"`+m.Name+`"`, fmt.Sprintf(`"<name%d>"`, i))
		}
	}
	pairs = append(pairs, t.URL, "<client0.0>")
	r.subst = strings.NewReplacer(pairs...)
	if err := r.Rebase(ctx); err != nil {
		return nil, err
	}
	if err := sc.Run(ctx, r); err != nil {
		return r.steps, err
	}
	return r.steps, nil
}

// Rebase makes the member's current index the origin of the offsets.
func (r *Recorder) Rebase(ctx context.Context) error {
	resp, err := r.do(ctx, http.MethodGet, "/v2/keys/", "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	i, err := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if err != nil {
		return fmt.Errorf("no X-Etcd-Index on GET /v2/keys/: %q", resp.Header.Get("X-Etcd-Index"))
	}
	r.base = i
	return nil
}

// Base is the member's index when the scenario started.
func (r *Recorder) Base() uint64 { return r.base }

func (r *Recorder) add(name, got string) {
	r.steps = append(r.steps, Step{Name: name, Got: r.normalise(got)})
}

func (r *Recorder) rel(s string) string {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return s
	}
	return fmt.Sprintf("i%+d", int64(n)-int64(r.base))
}

var (
	indexField = regexp.MustCompile(`"(createdIndex|modifiedIndex|index|X-Etcd-Index)":(\d+)`)
	inOrderKey = regexp.MustCompile(`/(\d{20})\b`)
	expiration = regexp.MustCompile(`"(expiration|startTime|uptime)":"[^"]*"`)
	causeNums  = regexp.MustCompile(`\[(\d+)(/| != )(\d+)\]`)
)

func (r *Recorder) normalise(s string) string {
	s = r.subst.Replace(s)
	s = indexField.ReplaceAllStringFunc(s, func(m string) string {
		sub := indexField.FindStringSubmatch(m)
		return `"` + sub[1] + `":"` + r.rel(sub[2]) + `"`
	})
	s = inOrderKey.ReplaceAllStringFunc(s, func(m string) string { return "/<" + r.rel(m[1:]) + ">" })
	s = expiration.ReplaceAllString(s, `"$1":"<time>"`)
	s = causeNums.ReplaceAllStringFunc(s, func(m string) string {
		sub := causeNums.FindStringSubmatch(m)
		return "[" + r.rel(sub[1]) + sub[2] + r.rel(sub[3]) + "]"
	})
	return s
}

// KeysResult records a KeysAPI answer: the response (with its
// X-Etcd-Index) or the error.
func (r *Recorder) KeysResult(name string, resp *client.Response, err error) {
	if err != nil {
		r.Err(name, err)
		return
	}
	b, _ := json.Marshal(resp)
	r.add(name, fmt.Sprintf(`{"X-Etcd-Index":%d,"resp":%s}`, resp.Index, b))
}

// Err records an error: a keys Error as its JSON, another error as its
// type and text.
func (r *Recorder) Err(name string, err error) {
	if err == nil {
		r.add(name, "ok")
		return
	}
	var ke client.Error
	if e, ok := err.(client.Error); ok {
		ke = e
		b, _ := json.Marshal(ke)
		r.add(name, "error "+string(b))
		return
	}
	r.add(name, fmt.Sprintf("error %T: %v", err, err))
}

// Value records v (as JSON) or the error.
func (r *Recorder) Value(name string, v any, err error) {
	if err != nil {
		r.Err(name, err)
		return
	}
	b, _ := json.Marshal(v)
	r.add(name, string(b))
}

// Note records a fact the scenario worked out itself.
func (r *Recorder) Note(name, s string) { r.add(name, s) }

func (r *Recorder) do(ctx context.Context, method, path, form string, h http.Header) (*http.Response, error) {
	var body io.Reader
	if form != "" && method != http.MethodGet {
		body = strings.NewReader(form)
	} else if form != "" {
		path += "?" + form
	}
	req, err := http.NewRequestWithContext(ctx, method, r.T.URL+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return r.T.HTTP.Do(req)
}

// head records the status and the v2 headers of an answer.
func (r *Recorder) head(resp *http.Response) string {
	present := func(k string) string {
		if resp.Header.Get(k) != "" {
			return "y"
		}
		return "n"
	}
	return fmt.Sprintf(`%d ct=%q "X-Etcd-Index":%s raft=%s%s cid=%s`, resp.StatusCode, resp.Header.Get("Content-Type"),
		orZero(resp.Header.Get("X-Etcd-Index")), present("X-Raft-Index"), present("X-Raft-Term"), present("X-Etcd-Cluster-Id"))
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// Raw sends a raw request (form goes in the query of a GET, in the body
// otherwise) and records the status, the v2 headers and the exact body.
func (r *Recorder) Raw(ctx context.Context, name, method, path, form string, h http.Header) error {
	resp, err := r.do(ctx, method, path, form, h)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.add(name, r.head(resp)+"\n"+string(b))
	return nil
}

// RawWatch sends a raw watch, records its headers once they arrive (the
// watch is then registered), runs during, and records the body.
func (r *Recorder) RawWatch(ctx context.Context, name, path, form string, during func() error) error {
	resp, err := r.do(ctx, http.MethodGet, path, form, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer resp.Body.Close()
	r.add(name+" headers", r.head(resp))
	if err := during(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.add(name+" body", string(b))
	return nil
}
