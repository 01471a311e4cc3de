//go:build keygate_faults

package faults_test

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/keygate/keygate/internal/faults"
)

// TestInjectKills re-runs this test binary with KEYGATE_FAULT naming a point and
// checks the child dies of SIGKILL at that point and not later.
func TestInjectKills(t *testing.T) {
	if os.Getenv("FAULTS_TEST_CHILD") == "1" {
		faults.Inject("faults.test-point")
		os.Exit(0) // reached only if Inject did not kill us
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInjectKills$")
	cmd.Env = append(os.Environ(), "FAULTS_TEST_CHILD=1", faults.EnvVar+"=faults.test-point")
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child: want death by SIGKILL, got err=%v", err)
	}
	ws, ok := exitErr.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: want death by SIGKILL, got %v", exitErr)
	}
}
