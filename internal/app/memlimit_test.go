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

	for _, c := range []struct {
		setting string
		hashes  int
		want    int64 // -1: unchanged
	}{
		{"", 2, 2*19<<20 + 26<<20}, // unset: automatic, 64 MiB on 2 cores
		{"", 4, 4*19<<20 + 26<<20},
		{" ", 1, 19<<20 + 26<<20},
		{"0", 2, -1}, // explicitly none
		{"80MiB", 2, 80 << 20},
	} {
		cfg.Server.MemoryLimit, cfg.Login.MaxConcurrent = c.setting, c.hashes
		want := c.want
		if want == -1 {
			want = before
		}
		restore := applyMemoryLimit(cfg, noEnv, log)
		if got := current(); got != want {
			t.Errorf("server.memory_limit %q, %d hashes: limit %d, want %d", c.setting, c.hashes, got, want)
		}
		restore()
		if got := current(); got != before {
			t.Errorf("after restore: limit %d, want %d", got, before)
		}
	}
	cfg.Login.MaxConcurrent = 0

	cfg.Server.MemoryLimit = "200MiB"
	restore := applyMemoryLimit(cfg, noEnv, log)
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
