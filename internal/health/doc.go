// Package health is the client's health tracker: the state of each
// endpoint (healthy, on probation, ejected), ejection and readmission,
// the readmission prober, the latency estimates from which endpoints are
// ranked and the adaptive per-attempt timeout. It does no I/O of its own:
// the client gives it the probes' requests, classifies its errors into a
// Class, and keeps the public API (client.HealthState, EjectionConfig).
package health
