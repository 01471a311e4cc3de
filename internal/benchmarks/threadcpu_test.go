package benchmarks

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time the calling OS thread has used
// (CLOCK_THREAD_CPUTIME_ID). An interleaved benchmark that locks its
// goroutine to its thread can then charge each operation the CPU it used,
// not the wall time, so another process taking the core mid-operation does
// not count against it: that is the "per CPU second" figure the targets are
// stated in, and the wall-time ratio beside it shows the noise.
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatalf("clock_gettime(CLOCK_THREAD_CPUTIME_ID): %v", err)
	}
	return time.Duration(ts.Nano())
}

// lockThread pins the benchmark's goroutine to its OS thread for threadCPU,
// until the benchmark ends.
func lockThread(b *testing.B) {
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
}
