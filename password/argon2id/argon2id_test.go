package argon2id

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

// TestReferenceVectors checks tags made by the CLI of the argon2 reference
// implementation (github.com/P-H-C/phc-winner-argon2) for password
// "password" and salt "somesalt".
func TestReferenceVectors(t *testing.T) {
	for _, v := range []struct {
		time, memory uint32
		threads      uint8
		hash         string
	}{
		{1, 64, 1, "655ad15eac652dc59f7170a7332bf49b8469be1fdb9c28bb"},
		{2, 64, 1, "068d62b26455936aa6ebe60060b0a65870dbfa3ddf8d41f7"},
		{2, 64, 2, "350ac37222f436ccb5c0972f1ebd3bf6b958bf2071841362"},
		{3, 256, 2, "4668d30ac4187e6878eedeacf0fd83c5a0a30db2cc16ef0b"},
		{4, 4096, 4, "145db9733a9f4ee43edf33c509be96b934d505a4efb33c5a"},
		{4, 1024, 8, "8dafa8e004f8ea96bf7c0f93eecf67a6047476143d15577f"},
	} {
		var m Memory
		got, err := m.Key([]byte("password"), []byte("somesalt"), v.time, v.memory, v.threads, 24)
		if err != nil || hex.EncodeToString(got) != v.hash {
			t.Errorf("t=%d m=%d p=%d: got %x, %v; want %s", v.time, v.memory, v.threads, got, err, v.hash)
		}
	}
}

// TestMatchesXCrypto compares Memory.Key with golang.org/x/crypto/argon2 over
// random parameters, passwords and salts, with one Memory reused throughout
// (grown, shrunk and grown again), so that what an earlier computation left
// in it can never change a tag.
func TestMatchesXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var m Memory
	for n := range 300 {
		threads := uint8(1 + rng.IntN(8))
		memory := uint32(rng.IntN(8*int(threads) + 400)) // below the floor too: both round it up
		passes := uint32(1 + rng.IntN(4))
		keyLen := uint32(1 + rng.IntN(200)) // both sides of BLAKE2b's 64 bytes
		pw, salt := randomBytes(rng, 80), randomBytes(rng, 40)
		matchXCrypto(t, fmt.Sprintf("case %d: ", n), &m, pw, salt, passes, memory, threads, keyLen)
	}
}

// matchXCrypto fails t unless m.Key and golang.org/x/crypto/argon2.IDKey
// make the same tag of these arguments; label starts the message.
func matchXCrypto(t *testing.T, label string, m *Memory, pw, salt []byte, passes, memory uint32, threads uint8, keyLen uint32) {
	t.Helper()
	want := argon2.IDKey(pw, salt, passes, memory, threads, keyLen)
	got, err := m.Key(pw, salt, passes, memory, threads, keyLen)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%st=%d m=%d p=%d len=%d: got %x, %v; want %x", label, passes, memory, threads, keyLen, got, err, want)
	}
}

func randomBytes(rng *rand.Rand, maxLen int) []byte {
	b := make([]byte, rng.IntN(maxLen))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// FuzzMatchesXCrypto is TestMatchesXCrypto driven by the fuzzer (CI runs the
// seeds only): go test -fuzz FuzzMatchesXCrypto ./password/argon2id/
func FuzzMatchesXCrypto(f *testing.F) {
	f.Add([]byte("password"), []byte("somesalt"), uint8(2), uint16(64), uint8(1), uint8(32))
	f.Add([]byte(""), []byte(""), uint8(1), uint16(0), uint8(3), uint8(65))
	f.Add([]byte("p"), []byte("s"), uint8(3), uint16(1000), uint8(7), uint8(128))
	var m Memory
	f.Fuzz(func(t *testing.T, pw, salt []byte, passes uint8, memory uint16, threads, keyLen uint8) {
		passes, threads, keyLen = 1+passes%4, 1+threads%8, max(keyLen, 1)
		memory %= 2048
		matchXCrypto(t, "", &m, pw, salt, uint32(passes), uint32(memory), threads, uint32(keyLen))
	})
}

func TestKeyRefusesWhatArgon2DoesNotDefine(t *testing.T) {
	for _, c := range []struct {
		time    uint32
		threads uint8
		keyLen  uint32
	}{{0, 1, 32}, {1, 0, 32}, {1, 1, 0}} {
		var m Memory
		if k, err := m.Key([]byte("pw"), []byte("saltsalt"), c.time, 64, c.threads, c.keyLen); err == nil {
			t.Errorf("t=%d p=%d len=%d: got %x and no error", c.time, c.threads, c.keyLen, k)
		}
	}
}

// TestReuseKeepsMemory shows the point of the package: once a Memory has
// the size a computation needs, another computation of that size allocates
// only its result, not its memory cost.
func TestReuseKeepsMemory(t *testing.T) {
	var m Memory
	pw, salt := []byte("password"), []byte("somesalt")
	if _, err := m.Key(pw, salt, 1, 1024, 1, 32); err != nil {
		t.Fatal(err)
	}
	if m.Size() != 1024 {
		t.Fatalf("Size() = %d KiB after a 1024 KiB computation", m.Size())
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 20
	for range runs {
		if _, err := m.Key(pw, salt, 1, 1024, 1, 32); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// The memory cost is 1 MiB; the result, H0's and H''s BLAKE2b states and
	// the goroutine-free bookkeeping are a few KiB.
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("a reused Memory allocated %d bytes per 1 MiB computation; want under 16 KiB", per)
	}
	if m.Size() != 1024 {
		t.Errorf("Size() = %d KiB after reuse", m.Size())
	}
}

// BenchmarkInterleaved runs golang.org/x/crypto/argon2.IDKey (fresh memory
// each call, SSE assembly) and Memory.Key (reused memory, pure Go) in turns
// within one loop with OWASP's parameters (m=19456, t=2, p=1), so the ratio
// x/crypto ÷ ours holds on a noisy machine: above 1 means ours is faster.
//
//	go test -run '^$' -bench Interleaved -benchtime 40x -count 3 ./password/argon2id/
func BenchmarkInterleaved(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	var m Memory
	var xc, ours time.Duration
	for n := 0; b.Loop(); n++ {
		for k := range 2 {
			t0 := time.Now()
			if (n+k)%2 == 0 {
				argon2.IDKey(pw, salt, 2, 19456, 1, 32)
				xc += time.Since(t0)
				continue
			}
			if _, err := m.Key(pw, salt, 2, 19456, 1, 32); err != nil {
				b.Fatal(err)
			}
			ours += time.Since(t0)
		}
	}
	b.ReportMetric(float64(xc)/float64(time.Millisecond)/float64(b.N), "xcrypto-ms/op")
	b.ReportMetric(float64(ours)/float64(time.Millisecond)/float64(b.N), "reused-ms/op")
	b.ReportMetric(float64(xc)/float64(ours), "xcrypto/reused")
}

// BenchmarkKey is Memory.Key alone with OWASP's parameters, for profiles.
func BenchmarkKey(b *testing.B) {
	pw, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	var m Memory
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Key(pw, salt, 2, 19456, 1, 32); err != nil {
			b.Fatal(err)
		}
	}
}
