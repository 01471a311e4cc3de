package app

import (
	"io"
	"log/slog"
	"runtime/debug"
	"testing"

	"github.com/keygate/keygate/config"
)

func TestApplyMemoryLimit(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	current := func() int64 { return debug.SetMemoryLimit(-1) } // -1 reads without changing
	before := current()
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	cfg := config.Default()
	noEnv := func(string) string { return "" }

	restore := applyMemoryLimit(cfg, noEnv, log) // unset: nothing changes
	if got := current(); got != before {
		t.Errorf("no server.memory_limit: limit %d, want it unchanged (%d)", got, before)
	}
	restore()

	cfg.Server.MemoryLimit = "200MiB"
	restore = applyMemoryLimit(cfg, noEnv, log)
	if got := current(); got != 200<<20 {
		t.Errorf("server.memory_limit 200MiB: limit %d", got)
	}
	restore()
	if got := current(); got != before {
		t.Errorf("after restore: limit %d, want %d", got, before)
	}

	// GOMEMLIMIT wins: the runtime applied it at start; the setting is ignored.
	restore = applyMemoryLimit(cfg, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "1GiB"
		}
		return ""
	}, log)
	if got := current(); got != before {
		t.Errorf("GOMEMLIMIT set: limit %d, want it unchanged (%d)", got, before)
	}
	restore()
}
