// Package poll is the one way Keygate's tests wait for something that happens
// in real time (another process, a background refresh, a replica's rotation):
// they poll a condition up to a deadline instead of sleeping a fixed time, so a
// fast machine does not wait and a slow one does not fail.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until evaluates its condition.
const Interval = 20 * time.Millisecond

// Until evaluates cond every Interval until it holds, and fails the test with
// "timed out after <timeout> waiting for <what>" if timeout passes first. It
// asserts no duration: timeout is only a bound on a hung test.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}
