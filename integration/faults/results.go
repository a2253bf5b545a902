// Package faults is a fault suite for github.com/etcdv2/client on the real
// 3-member test bed (integration/testbed): open-loop load from 64 callers
// at a fixed arrival rate, one fault per scenario, every built-in selection
// policy and the official v2 client (go.etcd.io/etcd/client/v2) side by
// side.
//
// The suite is TestFaultSuite; it runs only with ETCDV2_FAULTS=1 and writes
// its results as JSON to ETCDV2_FAULTS_OUT. This file holds the result
// types, shared by the test and by cmd/report, which renders them (with
// Render) into docs/resilience.md. scripts/resilience does both.
package faults

import "time"

// Results is everything one run of TestFaultSuite measured.
type Results struct {
	Started   time.Time `json:"started"`
	GoVersion string    `json:"go_version"`
	CPUs      int       `json:"cpus"`
	// LoadAvg is /proc/loadavg when the suite started (the machine is shared).
	LoadAvg string `json:"loadavg"`
	Load    Load   `json:"load"`
	Runs    []Run  `json:"runs"`
}

// Load describes the load generator and the run schedule.
type Load struct {
	Rate           int     `json:"rate_per_s"`
	Workers        int     `json:"workers"`
	WriteShare     float64 `json:"write_share"`
	Keys           int     `json:"keys"`
	RequestTimeout string  `json:"request_timeout"`
	Before         string  `json:"before"`
	Fault          string  `json:"fault"`
	After          string  `json:"after"`
	Baseline       string  `json:"baseline"`
	Watches        bool    `json:"watches"`
}

// Run is one scenario against one contender on a fresh cluster.
type Run struct {
	Scenario  string `json:"scenario"`
	Contender string `json:"contender"`
	// Ours is true for github.com/etcdv2/client (Stats available).
	Ours bool `json:"ours"`
	// Members are the member names in the client's endpoint order.
	Members []string `json:"members"`
	// MemberURLs are the members' client (proxy) URLs, same order.
	MemberURLs []string `json:"member_urls,omitempty"`
	// Leader is the leader's name when the load started.
	Leader string `json:"leader"`
	// Target is the faulted member, TargetRule how it was chosen.
	Target          string `json:"target,omitempty"`
	TargetRule      string `json:"target_rule,omitempty"`
	TargetWasLeader bool   `json:"target_was_leader,omitempty"`
	// FaultAt and RestoreAt are seconds since the load started; RestoreTook
	// is how long the restore action itself took (e.g. Restart).
	FaultAt     float64 `json:"fault_at_s,omitempty"`
	RestoreAt   float64 `json:"restore_at_s,omitempty"`
	RestoreTook float64 `json:"restore_took_s,omitempty"`
	// Phases: before, fault, after (baseline: one phase "steady").
	Phases []Phase       `json:"phases"`
	Total  Phase         `json:"total"`
	Fault  *FaultMetrics `json:"fault_metrics,omitempty"`
	// Errors are up to 8 distinct error texts with their counts.
	Errors []ErrCount `json:"errors,omitempty"`
	// Final is the client's Stats at the end (ours only), reduced.
	Final *StatsSummary `json:"final_stats,omitempty"`
	// Transitions are the health state changes seen by polling Stats
	// every 20 ms (ours only).
	Transitions []Transition `json:"transitions,omitempty"`
	// Unexpected lists failures of ours beyond what a fault of one member
	// may cause: any read; a write, unless its outcome is unknown because
	// it was sent to the target before the client gave the target up.
	Unexpected []string `json:"unexpected,omitempty"`
	// Note says anything unusual about the run.
	Note string `json:"note,omitempty"`
	// Timeline is the load in consecutive windows of BucketSeconds by
	// scheduled time, from the start of the load (for latency-over-time
	// charts). Runs recorded before it existed have none.
	Timeline []Bucket `json:"timeline,omitempty"`
}

// BucketSeconds is the width of a Timeline window.
const BucketSeconds = 0.25

// Bucket is the load over requests scheduled in one Timeline window.
type Bucket struct {
	// At is the window's start in seconds since the load started.
	At       float64 `json:"at_s"`
	Requests int     `json:"requests"`
	// Fails counts failed requests (unserved ones are not counted).
	Fails int `json:"fails"`
	// Latencies in milliseconds from the scheduled time, successful and
	// failed requests alike (0 when the window has no finished request).
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// Phase is the load measured over requests scheduled in one time window.
type Phase struct {
	Name       string `json:"name"`
	Requests   int    `json:"requests"`
	Reads      int    `json:"reads"`
	Writes     int    `json:"writes"`
	ReadFails  int    `json:"read_fails"`
	WriteFails int    `json:"write_fails"`
	// Delayed counts requests that found all workers busy when due.
	Delayed int `json:"delayed"`
	// Unserved counts requests cut off at the end of the run (not sent, or
	// aborted by the drain limit); they are not in the failures.
	Unserved int `json:"unserved"`
	// Latencies in milliseconds from the scheduled time, successful and
	// failed requests alike.
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	// Answers counts successful answers per member. Ours: Response.Endpoint
	// of successful calls. Official: /v2/keys attempts that got response
	// headers, per member, seen by a counting transport (its Response does
	// not name the member).
	Answers map[string]int `json:"answers"`
	// KeyAttempts counts /v2/keys HTTP attempts per member (counting
	// transport; retries included, probes excluded).
	KeyAttempts map[string]int `json:"key_attempts"`
	// OtherAttempts counts other HTTP requests per member (probes, member
	// list, leader look-ups).
	OtherAttempts map[string]int `json:"other_attempts,omitempty"`
}

// FaultMetrics are the per-fault measurements.
type FaultMetrics struct {
	// FirstReadMs is the latency of the first read scheduled at or after
	// the fault, FirstReadOK whether it succeeded.
	FirstReadMs float64 `json:"first_read_ms"`
	FirstReadOK bool    `json:"first_read_ok"`
	// FirstOKReadMs is the time from the fault until the first successful
	// read scheduled at or after the fault completed.
	FirstOKReadMs float64 `json:"first_ok_read_ms"`
	// Over1s counts requests scheduled in the fault phase that took over 1 s.
	Over1s int `json:"over_1s"`
	// KeysToTargetAfterFault counts /v2/keys attempts sent to the target
	// from the fault until the restore.
	KeysToTargetAfterFault int `json:"keys_to_target_after_fault"`
	// Ours only (-1 when not seen):
	// EjectMs: fault → target first seen ejected.
	EjectMs float64 `json:"eject_ms"`
	// ReadmitMs: restore start → target first seen not ejected, if the last
	// poll before the restore saw it ejected (0 if it did not).
	ReadmitMs float64 `json:"readmit_ms"`
	// KeysToTargetWhileEjected counts /v2/keys attempts sent to the target
	// while Stats showed it ejected (between first ejection and readmission).
	KeysToTargetWhileEjected int `json:"keys_to_target_while_ejected"`
	// EjectionsDuringFault is the target's Ejections counter increase from
	// the fault to the restore.
	EjectionsDuringFault int `json:"ejections_during_fault"`
	// SlowAnswerMs is the median latency of answers from the target in the
	// fault phase (delay scenarios: the effective delay plus service time).
	SlowAnswerMs float64 `json:"slow_answer_ms,omitempty"`
	SlowAnswers  int     `json:"slow_answers,omitempty"`
}

// ErrCount is one error text and how often it was returned.
type ErrCount struct {
	Err   string `json:"err"`
	Count int    `json:"count"`
}

// StatsSummary is a reduced client.Stats.
type StatsSummary struct {
	Requests         uint64          `json:"requests"`
	Retries          uint64          `json:"retries"`
	RetriesDenied    uint64          `json:"retries_denied"`
	AttemptTimeoutMs float64         `json:"attempt_timeout_ms"`
	Endpoints        []EndpointStats `json:"endpoints"`
}

// EndpointStats is one endpoint's counters at the end of a run.
type EndpointStats struct {
	Member        string  `json:"member"`
	State         string  `json:"state"`
	Attempts      uint64  `json:"attempts"`
	Failures      uint64  `json:"failures"`
	Ejections     uint64  `json:"ejections"`
	Probes        uint64  `json:"probes"`
	ProbeFailures uint64  `json:"probe_failures"`
	EjectedMs     float64 `json:"ejected_ms"`
}

// Transition is one observed health state change.
type Transition struct {
	At     float64 `json:"at_s"`
	Member string  `json:"member"`
	State  string  `json:"state"`
}

// ChartFile is the name of the latency-over-time chart of a scenario,
// drawn from the runs' Timelines next to the report (bench/cmd/faultcharts).
func ChartFile(scenario string) string { return "resilience-" + scenario + ".svg" }
