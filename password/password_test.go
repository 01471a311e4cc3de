package password

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keygate/keygate/password/argon2id"
	"golang.org/x/crypto/argon2"
)

// smallParams keeps tests fast: 64 KiB and one pass instead of 19 MiB and two.
func smallParams() Params {
	return Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
}

func TestDefaultParams(t *testing.T) {
	want := Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	if got := DefaultParams(); got != want {
		t.Fatalf("DefaultParams() = %+v, want %+v", got, want)
	}
	if err := want.Validate(); err != nil {
		t.Fatalf("DefaultParams().Validate() = %v", err)
	}
}

// TestRoundTripDefault is the one test that pays for DefaultParams.
func TestRoundTripDefault(t *testing.T) {
	h := NewHasher(DefaultParams(), 2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("Hash = %q, want the DefaultParams PHC prefix", enc)
	}
	if ok, err := h.Verify(ctx, "correct horse battery staple", enc); err != nil || !ok {
		t.Fatalf("Verify(right password) = %v, %v; want true, nil", ok, err)
	}
	if ok, err := h.Verify(ctx, "Correct horse battery staple", enc); err != nil || ok {
		t.Fatalf("Verify(wrong password) = %v, %v; want false, nil", ok, err)
	}
}

// TestReferenceVector checks interoperability with the argon2 reference
// implementation (phc-winner-argon2, src/test.c): a hash it wrote verifies
// here, and one with a flipped bit does not.
func TestReferenceVector(t *testing.T) {
	const enc = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := NewHasher(smallParams(), 1)
	tests := []struct {
		name, plain, enc string
		want             bool
	}{
		{"reference", "password", enc, true},
		{"wrong password", "passwore", enc, false},
		{"tampered hash", "password", strings.Replace(enc, "$CTFh", "$CTFi", 1), false},
		{"tampered salt", "password", strings.Replace(enc, "$c29tZXNhbHQ", "$d29tZXNhbHQ", 1), false},
		{"tampered t", "password", strings.Replace(enc, "t=2", "t=3", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), tt.plain, tt.enc)
			if err != nil || ok != tt.want {
				t.Fatalf("Verify = %v, %v; want %v, nil", ok, err, tt.want)
			}
		})
	}
}

func TestHashVerify(t *testing.T) {
	h := NewHasher(smallParams(), 4)
	ctx := context.Background()
	tests := []struct {
		name, hashed, tried string
		want                bool
	}{
		{"same", "hunter2", "hunter2", true},
		{"different", "hunter2", "hunter3", false},
		{"case", "hunter2", "Hunter2", false},
		{"prefix", "hunter2", "hunter", false},
		{"empty matches empty", "", "", true},
		{"empty vs something", "", "x", false},
		{"unicode", "pässwörd🔑", "pässwörd🔑", true},
		{"trailing NUL", "hunter2", "hunter2\x00", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := h.Hash(ctx, tt.hashed)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := h.Verify(ctx, tt.tried, enc)
			if err != nil || ok != tt.want {
				t.Fatalf("Verify(%q) against Hash(%q) = %v, %v; want %v, nil", tt.tried, tt.hashed, ok, err, tt.want)
			}
		})
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	h := NewHasher(smallParams(), 1)
	seen := make(map[string]bool)
	for range 20 {
		enc, err := h.Hash(context.Background(), "same password")
		if err != nil {
			t.Fatal(err)
		}
		salt := strings.Split(enc, "$")[4]
		if seen[salt] {
			t.Fatalf("salt %q repeated", salt)
		}
		seen[salt] = true
	}
}

func TestVerifyMalformed(t *testing.T) {
	// A valid small-params hash to mutate: salt is 16 bytes, hash 32 bytes.
	const (
		salt = "c29tZXNhbHRzb21lc2FsdA"                      // "somesaltsomesalt"
		key  = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc" // 32 bytes
	)
	tests := []struct {
		name, enc string
	}{
		{"empty", ""},
		{"not PHC", "hunter2"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"algorithm case", "$Argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"version missing", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"version not a number", "$argon2id$v=x$m=64,t=1,p=1$" + salt + "$" + key},
		{"version leading zero", "$argon2id$v=019$m=64,t=1,p=1$" + salt + "$" + key},
		{"m above uint32", "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key},
		{"m max uint32", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"m just above MaxMemory", "$argon2id$v=19$m=262145,t=1,p=1$" + salt + "$" + key},
		{"m below 8 per lane", "$argon2id$v=19$m=15,t=2,p=2$" + salt + "$" + key},
		{"m zero", "$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key},
		{"t zero", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"t huge", "$argon2id$v=19$m=64,t=1000000,p=1$" + salt + "$" + key},
		{"p zero", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"p wraps uint8", "$argon2id$v=19$m=64,t=1,p=257$" + salt + "$" + key},
		{"p above max", "$argon2id$v=19$m=256,t=1,p=17$" + salt + "$" + key},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key},
		{"plus sign", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"space", "$argon2id$v=19$m=64, t=1,p=1$" + salt + "$" + key},
		{"params reordered", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"param missing", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key},
		{"extra keyid param", "$argon2id$v=19$m=64,t=1,p=1,keyid=abc$" + salt + "$" + key},
		{"salt bad base64", "$argon2id$v=19$m=64,t=1,p=1$c29t!!!$" + key},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"salt url alphabet", "$argon2id$v=19$m=64,t=1,p=1$" + strings.Replace(salt, "Z", "-", 1) + "$" + key},
		{"hash trailing bits", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:len(key)-1] + "d"},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key},
		{"salt too long", "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 90) + "$" + key},
		{"hash too short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$c2hvcnQ"},
		{"hash too long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 88)},
		{"hash missing", "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{"hash empty", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$"},
		{"salt empty", "$argon2id$v=19$m=64,t=1,p=1$$" + key},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$x"},
		{"no leading $", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"trailing newline", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "\n"},
		{"CR in salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:4] + "\r" + salt[4:] + "$" + key},
		{"huge", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 1<<20)},
	}
	h := NewHasher(smallParams(), 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := h.Verify(context.Background(), "password", tt.enc)
			if !errors.Is(err, ErrMalformedHash) || ok {
				t.Fatalf("Verify(%.80q) = %v, %v; want false, ErrMalformedHash", tt.enc, ok, err)
			}
			if !h.NeedsRehash(tt.enc) {
				t.Errorf("NeedsRehash(%.80q) = false for a malformed hash", tt.enc)
			}
		})
	}

	// The unmutated string is valid, so each case above fails for its own reason.
	valid := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	if _, err := h.Verify(context.Background(), "password", valid); err != nil {
		t.Fatalf("Verify(valid base string) = %v", err)
	}
}

func TestNeedsRehash(t *testing.T) {
	h := NewHasher(smallParams(), 1)
	ctx := context.Background()
	mustHash := func(p Params) string {
		t.Helper()
		enc, err := NewHasher(p, 1).Hash(ctx, "pw")
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	with := func(f func(*Params)) Params {
		p := smallParams()
		f(&p)
		return p
	}
	tests := []struct {
		name string
		enc  string
		want bool
	}{
		{"same params", mustHash(smallParams()), false},
		{"more memory", mustHash(with(func(p *Params) { p.Memory = 128 })), true},
		{"less memory", mustHash(with(func(p *Params) { p.Memory = 32 })), true},
		{"more iterations", mustHash(with(func(p *Params) { p.Iterations = 2 })), true},
		{"more parallelism", mustHash(with(func(p *Params) { p.Parallelism = 2 })), true},
		{"longer salt", mustHash(with(func(p *Params) { p.SaltLen = 32 })), true},
		{"shorter key", mustHash(with(func(p *Params) { p.KeyLen = 16 })), true},
		{"malformed", "$argon2id$v=19$m=64,t=1,p=1$", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := h.NeedsRehash(tt.enc); got != tt.want {
				t.Fatalf("NeedsRehash(%q) = %v, want %v", tt.enc, got, tt.want)
			}
		})
	}
}

// TestVerifyOtherParams: hashes made with other parameters still verify, which
// is what lets NeedsRehash upgrade them at the next login.
func TestVerifyOtherParams(t *testing.T) {
	old := NewHasher(Params{Memory: 32, Iterations: 3, Parallelism: 2, SaltLen: 8, KeyLen: 16}, 1)
	enc, err := old.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := NewHasher(smallParams(), 1).Verify(context.Background(), "pw", enc); err != nil || !ok {
		t.Fatalf("Verify(old-params hash) = %v, %v; want true, nil", ok, err)
	}
}

func TestVerifyDummy(t *testing.T) {
	h := NewHasher(smallParams(), 1)
	// The dummy must cost what a current hash costs: same parameters.
	if h.NeedsRehash(h.dummy) {
		t.Fatalf("dummy %q does not use the Hasher's params", h.dummy)
	}
	if ok, err := h.Verify(context.Background(), "", h.dummy); err != nil || ok {
		t.Fatalf("Verify(\"\", dummy) = %v, %v; want false, nil", ok, err)
	}
	h.VerifyDummy(context.Background(), "anything")
	// It waits for a slot like Verify, and gives up with its context.
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.VerifyDummy(ctx, "anything") // must return, not block
	h.release()
	if len(h.sem) != 0 {
		t.Fatalf("%d slots still held", len(h.sem))
	}
}

func TestNewHasherPanics(t *testing.T) {
	tests := []struct {
		name          string
		p             Params
		maxConcurrent int
	}{
		{"zero params", Params{}, 1},
		{"zero concurrency", smallParams(), 0},
		{"negative concurrency", smallParams(), -1},
		{"memory above max", Params{Memory: MaxMemory + 1, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}, 1},
		{"short salt", Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 4, KeyLen: 32}, 1},
		{"short key", Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 8}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("NewHasher did not panic")
				}
			}()
			NewHasher(tt.p, tt.maxConcurrent)
		})
	}
}

// TestConcurrencyBound holds every slot through the unexported acquire, so the
// outcome does not depend on scheduling: no sleeps, no timing.
func TestConcurrencyBound(t *testing.T) {
	const slots = 2
	h := NewHasher(smallParams(), slots)
	enc, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	for range slots {
		if err := h.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), 0)
	defer cancel2()
	ops := []struct {
		name string
		run  func(context.Context) error
	}{
		{"Hash", func(ctx context.Context) error { _, err := h.Hash(ctx, "pw"); return err }},
		{"Verify", func(ctx context.Context) error { _, err := h.Verify(ctx, "pw", enc); return err }},
	}
	ctxs := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline", expired, context.DeadlineExceeded},
	}
	for _, op := range ops {
		for _, c := range ctxs {
			t.Run(op.name+"/"+c.name, func(t *testing.T) {
				if err := op.run(c.ctx); !errors.Is(err, c.want) {
					t.Fatalf("%s with all slots held = %v, want %v", op.name, err, c.want)
				}
			})
		}
	}

	// Cancelled while already waiting: the goroutine blocks on the full
	// semaphore (or sees the cancellation first); either way it must return
	// the context's error, never a result.
	ctx, cancel3 := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := h.Hash(ctx, "pw"); done <- err }()
	cancel3()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash cancelled while waiting = %v, want context.Canceled", err)
	}

	// Freeing one slot lets work through again, and leaves no slot leaked.
	h.release()
	if _, err := h.Hash(context.Background(), "pw"); err != nil {
		t.Fatalf("Hash after a slot was freed = %v", err)
	}
	h.release()
	if n := len(h.sem); n != 0 {
		t.Fatalf("%d slots held after all work finished", n)
	}
}

// TestCancelledNeverRuns: a context that has already ended gets no slot even
// when one is free, so abandoned requests cost nothing.
func TestCancelledNeverRuns(t *testing.T) {
	h := NewHasher(smallParams(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Hash(cancelled ctx) = %v, want context.Canceled", err)
		}
	}
}

// TestConcurrentUse runs many hashes through a small semaphore under -race.
func TestConcurrentUse(t *testing.T) {
	h := NewHasher(smallParams(), 3)
	errs := make(chan error, 32)
	for i := range cap(errs) {
		go func() {
			pw := strings.Repeat("x", i)
			enc, err := h.Hash(context.Background(), pw)
			if err == nil {
				var ok bool
				if ok, err = h.Verify(context.Background(), pw, enc); err == nil && !ok {
					err = errors.New("round trip failed")
				}
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.sem); n != 0 {
		t.Fatalf("%d slots held after all work finished", n)
	}
}

func BenchmarkVerifyDefault(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := h.Verify(ctx, "correct horse battery staple", enc); err != nil || !ok {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}

// TestPoolKeepsOnlyOwnSize: the working memory of a computation with the
// Hasher's own parameters goes back to the pool for the next login, and one
// grown for a costlier stored hash does not, so an old or planted row cannot
// pin a large memory per slot for the life of the process.
func TestPoolKeepsOnlyOwnSize(t *testing.T) {
	ctx := context.Background()
	p := Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	h := NewHasher(p, 1)
	costly := p
	costly.Memory = 1024
	big, err := NewHasher(costly, 1).Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Verify(ctx, "pw", big); !ok || err != nil {
		t.Fatalf("Verify of a costlier hash = %v, %v", ok, err)
	}
	if m := h.mem.Get(); m != nil {
		t.Fatalf("the pool kept a memory grown to the costlier hash's size: %v KiB", sizeOf(m))
	}
	if _, err := h.Hash(ctx, "pw"); err != nil {
		t.Fatal(err)
	}
	// sync.Pool may drop an item (it does at random under the race
	// detector), so only what it returns is checked.
	if m := h.mem.Get(); m != nil && sizeOf(m) != p.Memory {
		t.Fatalf("the pool holds a memory of %d KiB; want the Hasher's %d", sizeOf(m), p.Memory)
	}
}

func sizeOf(m any) uint32 { return m.(*argon2id.Memory).Size() }

// TestHashesOfXCryptoVerify: hashes stored before the Hasher computed
// argon2id itself (golang.org/x/crypto/argon2) still verify, and the
// Hasher's own verify with x/crypto, over several parameter sets.
func TestHashesOfXCryptoVerify(t *testing.T) {
	ctx := context.Background()
	salt := []byte("0123456789abcdef")
	for _, p := range []Params{
		DefaultParams(),
		{Memory: 64, Iterations: 3, Parallelism: 2, SaltLen: 16, KeyLen: 16},
		{Memory: 4096, Iterations: 1, Parallelism: 4, SaltLen: 16, KeyLen: 64},
	} {
		enc := encode(p, salt, argon2.IDKey([]byte("hunter2"), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLen))
		h := NewHasher(p, 2)
		if ok, err := h.Verify(ctx, "hunter2", enc); !ok || err != nil {
			t.Errorf("%+v: x/crypto's hash does not verify: %v, %v", p, ok, err)
		}
		mine, err := h.Hash(ctx, "hunter2")
		if err != nil {
			t.Fatal(err)
		}
		_, s, key, err := decode(mine)
		if err != nil {
			t.Fatal(err)
		}
		if want := argon2.IDKey([]byte("hunter2"), s, p.Iterations, p.Memory, p.Parallelism, p.KeyLen); !bytes.Equal(key, want) {
			t.Errorf("%+v: Hash made %x; x/crypto makes %x", p, key, want)
		}
	}
}
