//go:build keygate_faults

package faults

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// Inject marks a named point where crash-safety tests may kill the process. In
// this build (with the keygate_faults tag) it kills the process with SIGKILL when
// the KEYGATE_FAULT environment variable equals point, and otherwise returns.
// SIGKILL cannot be caught, so nothing after this line runs: the on-disk state
// is exactly what a power cut at this point would leave.
func Inject(point string) {
	if point == "" || os.Getenv(EnvVar) != point {
		return
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
		// Carrying on would let a test believe the point was survived.
		panic(fmt.Sprintf("faults: kill self at %q: %v", point, err))
	}
	// A signal to oneself is delivered before kill returns on Linux, but do not
	// let the caller run past the point should delivery ever lag.
	for {
		time.Sleep(time.Hour)
	}
}
