package version

import (
	"runtime"
	"strings"
	"testing"
)

// TestOverride: a version set with -ldflags -X wins over what Go recorded.
func TestOverride(t *testing.T) {
	defer func(v string) { override = v }(override)
	if got := Get(); got.Version == "" || got.GoVersion != runtime.Version() {
		t.Errorf("without override: %+v", got)
	}
	override = "v9.8.7"
	in := Get()
	if in.Version != "v9.8.7" || !strings.HasPrefix(in.String(), "v9.8.7 ("+runtime.Version()) {
		t.Errorf("with override: %+v %q", in, in.String())
	}
}
