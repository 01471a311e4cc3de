// Package password hashes and verifies user passwords with argon2id.
//
// Hashes are stored as PHC strings in the format of the argon2 reference
// implementation,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// (salt and hash in standard base64 without padding), so they carry their own
// parameters: raising the cost later does not invalidate stored hashes, and
// [Hasher.NeedsRehash] tells the login path when to upgrade one.
//
// A stored hash is treated as untrusted input. Its parameters decide how much
// memory and CPU a verification costs, so [Hasher.Verify] refuses anything
// outside the bounds documented on [MaxMemory] and its neighbours instead of
// letting a corrupted or planted row make the server allocate gigabytes.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keygate/keygate/password/argon2id"
)

// Bounds on the parameters this package accepts, both for a Hasher's own
// Params and for the parameters read back from a stored hash. They exist
// because verifying a hash allocates Memory KiB and runs Iterations passes
// over it on Parallelism goroutines, all taken from the stored string: without
// a ceiling one bad row could demand 4 TiB (m is a uint32 of KiB).
//
// The ceilings leave generous room above every published recommendation —
// OWASP's strongest argon2id setting is 46 MiB, RFC 9106's low-memory option
// is 64 MiB with t=3, p=4 — while keeping the worst case for a single
// verification to 256 MiB and a few seconds of CPU. The floors follow the
// argon2 specification (at least 8 KiB per lane, 8-byte salts) and refuse tags
// too short to resist guessing (16 bytes).
const (
	// MaxMemory is the largest memory cost, in KiB (256 MiB).
	MaxMemory = 256 * 1024
	// MaxIterations is the largest number of passes over memory.
	MaxIterations = 16
	// MaxParallelism is the largest number of lanes (goroutines) per hash.
	MaxParallelism = 16
	// MinSaltLen and MaxSaltLen bound the salt length in bytes.
	MinSaltLen, MaxSaltLen = 8, 64
	// MinKeyLen and MaxKeyLen bound the derived hash length in bytes.
	MinKeyLen, MaxKeyLen = 16, 64
)

// maxEncodedLen bounds the encoded string before it is split or decoded, so a
// huge stored value is refused without first copying it around. The longest
// string within the bounds above is about 210 bytes.
const maxEncodedLen = 256

// ErrMalformedHash is wrapped by every error about an encoded hash that cannot
// be verified: wrong algorithm or version, parameters out of bounds, bad
// base64, missing or extra fields. It lets callers tell a data problem (worth
// an alert: the stored row is damaged or was written by something else) from
// a cancelled context.
var ErrMalformedHash = errors.New("malformed password hash")

// Params are the argon2id cost parameters. They are written into every hash,
// so changing them affects only hashes made afterwards.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Iterations is the number of passes over memory (argon2's t).
	Iterations uint32
	// Parallelism is the number of lanes computed concurrently (argon2's p).
	Parallelism uint8
	// SaltLen is the length in bytes of the random salt made for each hash.
	SaltLen uint32
	// KeyLen is the length in bytes of the derived hash.
	KeyLen uint32
}

// DefaultParams returns the argon2id setting recommended by the OWASP Password
// Storage Cheat Sheet (https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html):
// 19 MiB of memory (m=19456 KiB), 2 iterations and 1 degree of parallelism,
// with a 16-byte salt and a 32-byte hash. It is the baseline OWASP considers
// safe while keeping a login at tens of milliseconds and 19 MiB, which matters
// for a server that may verify many passwords at once.
func DefaultParams() Params {
	return Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

// Validate reports whether p lies within the bounds this package accepts (see
// MaxMemory). NewHasher panics on invalid Params, so configuration loaders
// should call Validate first to report a bad setting as an error.
func (p Params) Validate() error {
	switch {
	case p.Parallelism < 1 || p.Parallelism > MaxParallelism:
		return fmt.Errorf("parallelism %d outside [1, %d]", p.Parallelism, MaxParallelism)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > MaxMemory:
		return fmt.Errorf("memory %d KiB outside [%d, %d] (at least 8 KiB per lane)", p.Memory, 8*uint32(p.Parallelism), MaxMemory)
	case p.Iterations < 1 || p.Iterations > MaxIterations:
		return fmt.Errorf("iterations %d outside [1, %d]", p.Iterations, MaxIterations)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return fmt.Errorf("salt length %d outside [%d, %d]", p.SaltLen, MinSaltLen, MaxSaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return fmt.Errorf("key length %d outside [%d, %d]", p.KeyLen, MinKeyLen, MaxKeyLen)
	}
	return nil
}

// Hasher hashes and verifies passwords with fixed Params while bounding how
// many argon2 computations run at once. Each computation holds Memory KiB
// until it returns, so without a bound a flood of login attempts would grow
// the heap until the process is killed; with one, live argon2 memory stays
// below maxConcurrent × the largest Memory in use (the Hasher's own, or a
// stored hash's, which is at most MaxMemory). Callers beyond the bound wait
// for a slot, and give up when their context ends.
//
// The argon2 memory itself is reused: a slot's computation takes a working
// memory from a pool and puts it back, so a flood of logins allocates its
// maxConcurrent × Memory KiB once instead of once per login. The pool holds
// at most one memory per slot, only of the Hasher's own size (a larger one
// grown for an old stored hash is dropped), and the runtime empties it after
// two collections without a login, so an idle server gives the memory back.
//
// A Hasher is safe for concurrent use.
type Hasher struct {
	params Params
	sem    chan struct{} // one token per running argon2 computation
	mem    sync.Pool     // *argon2id.Memory, at most one per slot
	dummy  string        // encoded hash with params, for VerifyDummy
	runs   atomic.Uint64 // argon2 computations started, for Computations
}

// Computations returns how many argon2 computations the Hasher has run (Hash,
// Verify and VerifyDummy alike), so that tests and metrics can see how much
// password work a flood of login attempts actually caused.
func (h *Hasher) Computations() uint64 { return h.runs.Load() }

// NewHasher returns a Hasher that makes hashes with p and runs at most
// maxConcurrent argon2 computations at a time. Choose maxConcurrent from the
// memory you can spend: maxConcurrent × p.Memory KiB (19 MiB each for
// DefaultParams); around the number of CPUs is a sensible start, since more
// concurrent computations only share the same cores.
//
// NewHasher panics if p is invalid (see Params.Validate) or maxConcurrent is
// less than 1: both are programming or configuration errors that must stop
// the server at start rather than weaken every login.
func NewHasher(p Params, maxConcurrent int) *Hasher {
	if err := p.Validate(); err != nil {
		panic("password: NewHasher: invalid params: " + err.Error())
	}
	if maxConcurrent < 1 {
		panic("password: NewHasher: maxConcurrent must be at least 1, got " + strconv.Itoa(maxConcurrent))
	}
	// The dummy only has to cost what a real hash costs to verify: the same
	// parameters, salt length and hash length. A random "hash" does that
	// without an argon2 run at start, and no password matches it.
	salt := make([]byte, p.SaltLen)
	key := make([]byte, p.KeyLen)
	rand.Read(salt) // never fails: crypto/rand.Read crashes the program instead
	rand.Read(key)
	return &Hasher{
		params: p,
		sem:    make(chan struct{}, maxConcurrent),
		dummy:  encode(p, salt, key),
	}
}

// Hash returns the PHC-encoded argon2id hash of plain with a fresh random salt,
// ready to store. It fails only when ctx ends while waiting for a slot.
func (h *Hasher) Hash(ctx context.Context, plain string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt) // never fails: crypto/rand.Read crashes the program instead
	key, err := h.derive(ctx, plain, salt, h.params)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether plain matches encoded, recomputing the hash with the
// parameters stored in encoded and comparing in constant time.
//
// A malformed encoded (wrong algorithm or version, parameters outside the
// bounds of MaxMemory and its neighbours, bad base64, missing fields) is an
// error wrapping ErrMalformedHash, never a silent false: a damaged row must be
// noticed, not look like a user who forgot their password. An error is also
// returned when ctx ends while waiting for a slot. ok is false whenever err is
// not nil.
func (h *Hasher) Verify(ctx context.Context, plain, encoded string) (ok bool, err error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	got, err := h.derive(ctx, plain, salt, p)
	if err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// VerifyDummy does the work of a Verify against a hash made with the Hasher's
// parameters, and discards the result. Call it when the user does not exist,
// so that an unknown user costs the same time (and the same wait for a slot)
// as a wrong password and response times do not reveal which accounts exist.
//
// The equivalence holds for users whose stored hash uses the current
// parameters; NeedsRehash-driven upgrades keep that the common case.
func (h *Hasher) VerifyDummy(ctx context.Context, plain string) {
	_, _ = h.Verify(ctx, plain, h.dummy) // the outcome is irrelevant; only the cost matters
}

// NeedsRehash reports whether encoded was made with parameters other than the
// Hasher's (memory, iterations, parallelism, salt or hash length), in either
// direction, so the login path can store a fresh Hash of the password it has
// just verified. It also reports true for an encoded that cannot be parsed,
// though Verify will already have rejected such a hash.
func (h *Hasher) NeedsRehash(encoded string) bool {
	p, _, _, err := decode(encoded)
	return err != nil || p != h.params
}

// derive runs argon2id once a slot is free. p.SaltLen is ignored: the salt is
// given.
func (h *Hasher) derive(ctx context.Context, plain string, salt []byte, p Params) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, fmt.Errorf("wait for a hashing slot: %w", err)
	}
	defer h.release()
	h.runs.Add(1)
	m, _ := h.mem.Get().(*argon2id.Memory)
	if m == nil {
		m = new(argon2id.Memory)
	}
	key, err := m.Key([]byte(plain), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen)
	if m.Size() <= h.params.Memory {
		h.mem.Put(m) // a memory grown beyond the Hasher's own is left to the collector
	}
	if err != nil {
		return nil, fmt.Errorf("argon2id with %+v: %w", p, err)
	}
	return key, nil
}

// acquire takes a slot, or returns ctx.Err() once ctx ends. A context that has
// already ended never gets a slot, even a free one, so an abandoned request
// does not spend memory and CPU on a result nobody reads.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// b64 returns the reference implementation's encoding: standard alphabet, no
// padding. Strict decoding refuses non-zero trailing bits, so each hash has a
// single valid spelling. A function rather than a package variable, which
// anyone could reassign.
func b64() *base64.Encoding { return base64.RawStdEncoding.Strict() }

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2id.Version, p.Memory, p.Iterations, p.Parallelism,
		b64().EncodeToString(salt), b64().EncodeToString(key))
}

// decode parses an encoded hash strictly: exactly the fields encode writes, in
// its order, with canonical decimal numbers, and every parameter within the
// package bounds. The returned Params' SaltLen and KeyLen are those of the
// decoded salt and key.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	bad := func(format string, a ...any) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, a...))
	}
	if len(encoded) > maxEncodedLen {
		return bad("%d bytes long, more than %d", len(encoded), maxEncodedLen)
	}
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" {
		return bad("want 5 '$'-prefixed fields, got %d", len(f)-1)
	}
	if f[1] != "argon2id" {
		return bad("algorithm %q, want argon2id", f[1])
	}
	v, ok := strings.CutPrefix(f[2], "v=")
	if !ok {
		return bad("version field %q, want v=%d", f[2], argon2id.Version)
	}
	if n, err := parseUint(v); err != nil || n != argon2id.Version {
		return bad("version %q, want %d", v, argon2id.Version)
	}
	if p, err = decodeParams(f[3]); err != nil {
		return bad("%v", err)
	}
	// Length-check the base64 before decoding it, then the decoded bytes.
	if len(f[4]) > b64().EncodedLen(MaxSaltLen) || len(f[5]) > b64().EncodedLen(MaxKeyLen) {
		return bad("salt or hash longer than %d or %d bytes", MaxSaltLen, MaxKeyLen)
	}
	// encoding/base64 skips CR and LF even in strict mode; refuse them here
	// so that a stored hash has exactly one accepted spelling.
	if strings.ContainsAny(f[4], "\r\n") || strings.ContainsAny(f[5], "\r\n") {
		return bad("line break in salt or hash")
	}
	if salt, err = b64().DecodeString(f[4]); err != nil {
		return bad("salt: %v", err)
	}
	if key, err = b64().DecodeString(f[5]); err != nil {
		return bad("hash: %v", err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return bad("%v", err)
	}
	return p, salt, key, nil
}

// decodeParams parses "m=…,t=…,p=…" with canonical numbers within the
// package bounds.
func decodeParams(field string) (Params, error) {
	ps := strings.Split(field, ",")
	if len(ps) != 3 {
		return Params{}, fmt.Errorf("parameters %q, want m=…,t=…,p=…", field)
	}
	var n [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return Params{}, fmt.Errorf("parameters %q, want m=…,t=…,p=…", field)
		}
		var err error
		if n[i], err = parseUint(s); err != nil {
			return Params{}, fmt.Errorf("parameter %s%q: %v", name, s, err)
		}
	}
	// Range-check before narrowing so that e.g. p=257 is not read as p=1.
	if n[0] > MaxMemory || n[1] > MaxIterations || n[2] > MaxParallelism {
		return Params{}, fmt.Errorf("parameters %q exceed m=%d,t=%d,p=%d", field, MaxMemory, MaxIterations, MaxParallelism)
	}
	return Params{Memory: uint32(n[0]), Iterations: uint32(n[1]), Parallelism: uint8(n[2])}, nil
}

// parseUint parses a canonical unsigned decimal: digits only, no sign, no
// leading zeros, so that one hash has one spelling.
func parseUint(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	if strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%q is not a canonical decimal", s)
	}
	return n, nil
}
