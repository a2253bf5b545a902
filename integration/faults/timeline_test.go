package faults

import (
	"reflect"
	"testing"
	"time"
)

// TestTimeline pins how requests fall into Timeline windows: by scheduled
// time, failures counted, unserved requests left out, percentiles per
// window from the scheduled time.
func TestTimeline(t *testing.T) {
	ms := time.Millisecond
	recs := []reqRec{
		{sched: 0, done: 10 * ms, ok: true},
		{sched: 100 * ms, done: 130 * ms, ok: true},
		{sched: 200 * ms, done: 1200 * ms, ok: false},
		{sched: 600 * ms, done: 605 * ms, ok: true},
		{sched: 700 * ms, unserved: true},
	}
	got := timeline(recs)
	want := []Bucket{
		{At: 0, Requests: 3, Fails: 1, P50: 30, P99: 1000},
		{At: 0.25},
		{At: 0.5, Requests: 1, P50: 5, P99: 5},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("timeline:\n got %+v\nwant %+v", got, want)
	}
}
