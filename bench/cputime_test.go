package bench

import "syscall"

// processCPU returns the CPU time (user and system) this process has used,
// in nanoseconds. The etcd members are other processes, so it is the
// client's cost alone (with the benchmark's own bookkeeping, the same for
// every contender).
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
