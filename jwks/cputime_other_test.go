//go:build !unix

package jwks_test

import "time"

func processCPUTime() (time.Duration, bool) { return 0, false }
