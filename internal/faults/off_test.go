//go:build !keygate_faults

package faults_test

import (
	"testing"

	"github.com/keygate/keygate/internal/faults"
)

// TestInjectOff checks that without the keygate_faults tag a named point is
// never fatal, even when the environment names it.
func TestInjectOff(t *testing.T) {
	t.Setenv(faults.EnvVar, "faults.test-point")
	faults.Inject("faults.test-point")
}
