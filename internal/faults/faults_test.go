package faults_test

import (
	"os"
	"testing"

	"github.com/keygate/keygate/internal/faults"
)

// TestInjectOtherPoint checks that a point other than the one named in the
// environment never fires, in either build.
func TestInjectOtherPoint(t *testing.T) {
	t.Setenv(faults.EnvVar, "some.other-point")
	faults.Inject("store.before-commit")
	faults.Inject("")
	if os.Getenv(faults.EnvVar) != "some.other-point" {
		t.Fatal("Inject changed the environment")
	}
}
