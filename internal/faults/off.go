//go:build !keygate_faults

package faults

// Inject marks a named point where crash-safety tests may kill the process. In
// this build (without the keygate_faults tag) it does nothing.
func Inject(point string) {}
