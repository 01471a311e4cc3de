// Package faults lets crash-safety tests kill a real Keygate binary at a named
// point in its code, such as just before a storage transaction commits, so the
// tests can check that what survives on disk is always consistent.
//
// Code marks a point by calling Inject with the point's name, for example
// faults.Inject("store.before-commit"). In an ordinary build Inject is an empty
// function the compiler removes, so the marks cost nothing and cannot be
// triggered in production. In a build with the keygate_faults tag
//
//	go build -tags keygate_faults ./...
//
// Inject kills its own process with SIGKILL when the environment variable
// KEYGATE_FAULT names the point being reached: no deferred functions, no
// rollbacks, no flushes run, just as if the machine lost power at that line.
// The package holds no mutable state; the environment is read at each call so a
// test chooses the point per process.
package faults

// EnvVar is the environment variable that, in a keygate_faults build, names the
// point at which Inject kills the process.
const EnvVar = "KEYGATE_FAULT"
