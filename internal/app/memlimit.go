package app

import (
	"log/slog"
	"runtime/debug"

	"github.com/keygate/keygate/config"
)

// applyMemoryLimit sets the Go runtime's soft memory limit from
// server.memory_limit (debug.SetMemoryLimit) and returns a function that puts
// back the previous limit. Precedence: the GOMEMLIMIT environment variable,
// when set, wins (the runtime already applied it at start, and an operator's
// environment overrides the file); otherwise a non-zero server.memory_limit;
// otherwise nothing changes (no limit: GOGC alone paces the collector).
//
// The limit is soft: the collector runs more often as the total Go memory
// nears it, instead of letting the heap double (GOGC=100) after each
// argon2id burst; it never makes an allocation fail.
func applyMemoryLimit(cfg config.Config, getenv func(string) string, log *slog.Logger) (restore func()) {
	limit, err := cfg.Server.MemoryLimitBytes() // validated by config.Load
	switch {
	case err != nil:
		log.Warn("server.memory_limit ignored", "err", err)
		return func() {}
	case limit == 0:
		return func() {}
	case getenv("GOMEMLIMIT") != "":
		log.Info("server.memory_limit ignored: GOMEMLIMIT is set and wins",
			"GOMEMLIMIT", getenv("GOMEMLIMIT"), "memory_limit", cfg.Server.MemoryLimit)
		return func() {}
	}
	prev := debug.SetMemoryLimit(limit)
	log.Debug("memory limit set", "bytes", limit, "memory_limit", cfg.Server.MemoryLimit)
	return func() { debug.SetMemoryLimit(prev) }
}
