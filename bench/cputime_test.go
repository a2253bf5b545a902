package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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

// clusterCPU returns the CPU time (user and system) the cluster's member
// processes have used, in nanoseconds, from /proc; 0 where that cannot be
// read. With the client's processCPU it tells whether a client costs the
// servers more as well.
func clusterCPU(e *env) int64 {
	var total int64
	for _, m := range e.cluster.Members() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(m.PID()) + "/stat")
		if err != nil {
			return 0
		}
		// The fields after the command name (which may hold spaces) start
		// after its closing parenthesis; utime and stime are fields 14
		// and 15, in clock ticks (100 per second on Linux).
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			return 0
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += (ut + st) * int64(10*time.Millisecond)
	}
	return total
}
