// Package benchmarks holds Keygate's end-to-end benchmarks: each runs a hot path
// of the real server beside the raw cryptographic operation it is built on, in
// the same run, so the ratio survives a noisy machine. See docs/BENCHMARKS.md.
package benchmarks
