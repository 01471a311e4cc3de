//go:build unix

package jwks_test

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time the process has used (user + system). The
// benchmarks report it per operation beside ns/op because on a shared,
// busy machine wall time mostly measures the neighbours, while CPU time
// still measures the work done.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
