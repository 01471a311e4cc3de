package poll

import (
	"testing"
)

// fakeTB records a failure instead of stopping the goroutine, so that Until's
// timeout path can be checked.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestUntil(t *testing.T) {
	n := 0
	Until(t, 0+Interval*100, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}

	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != f {
				t.Fatalf("Until did not fail the test on timeout (recovered %v)", r)
			}
		}()
		Until(f, 0, "never", func() bool { return false })
	}()
	if f.failed == "" {
		t.Fatal("no failure recorded")
	}
}
