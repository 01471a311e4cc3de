package app

import (
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/password"
)

// autoMemoryBase is the Go memory the automatic limit allows beyond the
// argon2id computations: runtime, stacks, SQLite's caches, requests in
// flight (measured: a server under a token load peaks at 40-65 MiB RSS).
const autoMemoryBase = 26 << 20

// AutoMemoryLimit is the soft memory limit serve applies when
// server.memory_limit is not set: the memory of the argon2id computations
// that may run at once (login.max_concurrent_hashes, by default the cores,
// 19 MiB each, reused from login to login) plus autoMemoryBase; 64 MiB on 2
// cores. Under a password flood it keeps RSS under 100 MiB on 2 cores
// (83-96 MiB; 107-137 MiB without a limit) at the same login rate, and token
// issuance is unchanged (docs/BENCHMARKS.md, "Argon2id in reused memory").
func AutoMemoryLimit(cfg config.Config) int64 {
	return int64(cfg.Login.HashConcurrency())*int64(password.DefaultParams().Memory)<<10 + autoMemoryBase
}

// applyMemoryLimit sets the Go runtime's soft memory limit from
// server.memory_limit (debug.SetMemoryLimit) and returns a function that puts
// back the previous limit. Precedence: the GOMEMLIMIT environment variable,
// when set, wins (the runtime already applied it at start, and an operator's
// environment overrides the file); otherwise server.memory_limit: a size, "0"
// for none (GOGC alone paces the collector), or unset for AutoMemoryLimit.
//
// The limit is soft: the collector runs more often as the total Go memory
// nears it, instead of letting the heap double (GOGC=100) after each
// argon2id burst; it never makes an allocation fail.
func applyMemoryLimit(cfg config.Config, getenv func(string) string, log *slog.Logger) (restore func()) {
	limit, err := cfg.Server.MemoryLimitBytes() // validated by config.Load
	auto := strings.TrimSpace(cfg.Server.MemoryLimit) == ""
	if auto {
		limit = AutoMemoryLimit(cfg)
	}
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
	log.Debug("memory limit set", "bytes", limit, "memory_limit", cfg.Server.MemoryLimit, "auto", auto)
	return func() { debug.SetMemoryLimit(prev) }
}
