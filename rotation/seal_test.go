package rotation_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keygate/keygate/rotation"
)

func TestSealOpen(t *testing.T) {
	kek := newKEK(t)
	s, err := rotation.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("pkcs8 private key bytes")
	sealed, err := s.Seal("kid-1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("sealed output contains the plaintext")
	}
	if got, err := s.Open("kid-1", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := rotation.NewSealer(newKEK(t))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	cases := map[string]func() ([]byte, error){
		"another kid (row swap)": func() ([]byte, error) { return s.Open("kid-2", sealed) },
		"another KEK":            func() ([]byte, error) { return other.Open("kid-1", sealed) },
		"flipped byte":           func() ([]byte, error) { return s.Open("kid-1", flipped) },
		"truncated":              func() ([]byte, error) { return s.Open("kid-1", sealed[:10]) },
		"empty":                  func() ([]byte, error) { return s.Open("kid-1", nil) },
	}
	for name, open := range cases {
		if _, err := open(); !errors.Is(err, rotation.ErrWrongKEK) {
			t.Errorf("%s: err = %v, want ErrWrongKEK", name, err)
		}
	}
	if _, err := rotation.NewSealer(kek[:16]); err == nil {
		t.Error("NewSealer accepted a 16-byte key")
	}
}

func TestParseKEK(t *testing.T) {
	k := newKEK(t)
	for name, s := range map[string]string{
		"base64":     base64.StdEncoding.EncodeToString(k),
		"base64url":  base64.RawURLEncoding.EncodeToString(k),
		"hex":        hex.EncodeToString(k),
		"whitespace": "  " + base64.StdEncoding.EncodeToString(k) + "\n",
	} {
		got, err := rotation.ParseKEK(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("%s: ParseKEK = %x, %v", name, got, err)
		}
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(k[:31]), "not base64 at all!!"} {
		if _, err := rotation.ParseKEK(bad); err == nil {
			t.Errorf("ParseKEK(%q) accepted it", bad)
		}
	}
}

func TestLoadKEK(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	dev := filepath.Join(dir, "data", "keygate.kek")

	none := func() (bool, error) { return false, nil }
	k1, err := rotation.LoadKEK(rotation.KEKSource{DevDefault: dev, SealedKeysExist: none}, log)
	if err != nil || len(k1) != 1 {
		t.Fatal(k1, err)
	}
	fi, err := os.Stat(dev)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := rotation.LoadKEK(rotation.KEKSource{DevDefault: dev}, log)
	if err != nil || len(k2) != 1 || !bytes.Equal(k1[0], k2[0]) {
		t.Fatalf("second load of the dev key differs: %v", err)
	}

	env := newKEK(t)
	got, err := rotation.LoadKEK(rotation.KEKSource{Value: hex.EncodeToString(env), File: dev, DevDefault: dev}, log)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], env) {
		t.Errorf("the environment value must win: %v", err)
	}
	if _, err := rotation.LoadKEK(rotation.KEKSource{Value: "nope"}, log); err == nil {
		t.Error("a malformed KEYGATE_KEY_ENCRYPTION_KEY was accepted")
	}
	if _, err := rotation.LoadKEK(rotation.KEKSource{File: filepath.Join(dir, "missing")}, log); err == nil {
		t.Error("a missing key file was accepted (it must not be created silently)")
	}
}

// TestLoadKEKKeyring: the environment takes keys separated by commas, a key file
// one per line (comments and blank lines ignored), the current key first.
func TestLoadKEKKeyring(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, b := newKEK(t), newKEK(t)
	got, err := rotation.LoadKEK(rotation.KEKSource{Value: base64.StdEncoding.EncodeToString(a) + ", " + hex.EncodeToString(b)}, log)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
		t.Fatalf("env keyring = %x, %v", got, err)
	}
	file := filepath.Join(t.TempDir(), "kek")
	body := "# current\n" + base64.StdEncoding.EncodeToString(b) + "\n\n# previous, until keys rewrap ran\n" + base64.StdEncoding.EncodeToString(a) + "\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = rotation.LoadKEK(rotation.KEKSource{File: file}, log)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], b) || !bytes.Equal(got[1], a) {
		t.Fatalf("file keyring = %x, %v", got, err)
	}
	_, err = rotation.LoadKEK(rotation.KEKSource{Value: hex.EncodeToString(a) + ",short"}, log)
	if err == nil || !strings.Contains(err.Error(), "key 2 of 2") {
		t.Errorf("a bad second key: %v", err)
	}
	if _, err := rotation.NewKeyring([][]byte{a, b, a}); err == nil {
		t.Error("a keyring with a key listed twice was accepted")
	}
	if _, err := rotation.NewKeyring(nil); err == nil {
		t.Error("an empty keyring was accepted")
	}
}

// TestLoadKEKNeverReplacesAMissingDevFile: with keys in the store, a missing
// development key file is an error naming the path, and nothing is created.
func TestLoadKEKNeverReplacesAMissingDevFile(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev := filepath.Join(t.TempDir(), "data", "keygate.kek")
	exist := func() (bool, error) { return true, nil }
	_, err := rotation.LoadKEK(rotation.KEKSource{DevDefault: dev, SealedKeysExist: exist}, log)
	if err == nil || !strings.Contains(err.Error(), dev) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("err = %v, want a refusal naming %s", err, dev)
	}
	if _, err := os.Stat(filepath.Dir(dev)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("something was created: %v", err)
	}
	failing := func() (bool, error) { return false, errors.New("db down") }
	if _, err := rotation.LoadKEK(rotation.KEKSource{DevDefault: dev, SealedKeysExist: failing}, log); err == nil {
		t.Error("a failed check for stored keys still created a key")
	}
	if _, err := os.Stat(dev); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a key file was created: %v", err)
	}
}

// TestKeyringOpensOlderKeys: the first key seals; every key opens; a blob names
// its key, so a key outside the keyring is reported by id.
func TestKeyringOpensOlderKeys(t *testing.T) {
	oldK, newK := newKEK(t), newKEK(t)
	oldS, _ := rotation.NewSealer(oldK)
	ring, err := rotation.NewKeyring([][]byte{newK, oldK})
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("pkcs8")
	underOld, _ := oldS.Seal("kid", secret)
	if got, err := ring.Open("kid", underOld); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the keyring does not open a key sealed under its older KEK: %v", err)
	}
	underNew, _ := ring.Seal("kid", secret)
	if underNew[0] != 2 || hex.EncodeToString(underNew[1:5]) != rotation.KEKID(newK) || ring.CurrentID() != rotation.KEKID(newK) {
		t.Errorf("sealed header %x, want version 2 and KEK id %s", underNew[:5], rotation.KEKID(newK))
	}
	if _, err := oldS.Open("kid", underNew); !errors.Is(err, rotation.ErrWrongKEK) || !strings.Contains(err.Error(), rotation.KEKID(newK)) {
		t.Errorf("the old KEK alone opening a new blob: %v, want ErrWrongKEK naming %s", err, rotation.KEKID(newK))
	}
	tampered := bytes.Clone(underNew)
	tampered[1] ^= 1 // claims another KEK
	if _, err := ring.Open("kid", tampered); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Errorf("a blob with another KEK id: %v", err)
	}
}

// TestKeyringOpensVersion1: the sealed format written before keyrings (version 1,
// no KEK id) still opens under its key, alone or anywhere in a ring, and only
// for its kid; Reseal moves it and blobs under older keys to the current key and
// format, and leaves current blobs alone.
func TestKeyringOpensVersion1(t *testing.T) {
	oldK, newK, other := newKEK(t), newKEK(t), newKEK(t)
	oldS, _ := rotation.NewSealer(oldK)
	ring, _ := rotation.NewKeyring([][]byte{newK, oldK})
	otherS, _ := rotation.NewSealer(other)
	secret := []byte("pkcs8")
	underOld, _ := oldS.Seal("kid", secret)
	underNew, _ := ring.Seal("kid", secret)
	legacy := sealV1(t, oldK, "kid", secret)
	for name, s := range map[string]*rotation.Sealer{"alone": oldS, "second in a ring": ring} {
		assertOpensV1(t, name, s, legacy, secret)
	}
	if _, err := otherS.Open("kid", legacy); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Errorf("version-1 blob, wrong KEK: %v", err)
	}

	for name, in := range map[string][]byte{"version 1": legacy, "old KEK": underOld} {
		assertResealed(t, name, ring, oldS, in)
	}
	if !oldS.UnderCurrent(underOld) || oldS.UnderCurrent(underNew) || ring.UnderCurrent(nil) || ring.UnderCurrent([]byte{2}) {
		t.Error("UnderCurrent: a blob is judged by its own header's KEK id against the first key")
	}
	if out, changed, err := ring.Reseal("kid", underNew); err != nil || changed || !bytes.Equal(out, underNew) {
		t.Errorf("Reseal of a current blob: changed=%v %v", changed, err)
	}
	if _, _, err := otherS.Reseal("kid", underNew); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Errorf("Reseal under a keyring that cannot open it: %v", err)
	}
}

// assertOpensV1 checks that s (named name) opens legacy, a version-1 blob of
// secret sealed for "kid", and refuses it for another kid.
func assertOpensV1(t *testing.T, name string, s *rotation.Sealer, legacy, secret []byte) {
	t.Helper()
	if got, err := s.Open("kid", legacy); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("version-1 blob, old KEK %s: %q, %v", name, got, err)
	}
	if _, err := s.Open("other", legacy); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Errorf("version-1 blob on another kid, %s: %v", name, err)
	}
}

// assertResealed checks that ring reseals in (a blob for "kid" under oldS's
// KEK, named name) to version 2 under its current KEK, which oldS cannot open.
func assertResealed(t *testing.T, name string, ring, oldS *rotation.Sealer, in []byte) {
	t.Helper()
	out, changed, err := ring.Reseal("kid", in)
	if err != nil || !changed || out[0] != 2 || hex.EncodeToString(out[1:5]) != ring.CurrentID() {
		t.Errorf("Reseal %s: changed=%v %v", name, changed, err)
	}
	if _, err := oldS.Open("kid", out); !errors.Is(err, rotation.ErrWrongKEK) {
		t.Errorf("Reseal %s: still opens under the old KEK", name)
	}
	if ring.UnderCurrent(in) || !ring.UnderCurrent(out) {
		t.Errorf("UnderCurrent %s: before %v, after Reseal %v; want false, true", name, ring.UnderCurrent(in), ring.UnderCurrent(out))
	}
}

// sealV1 seals the way Keygate did before keyrings: 0x01 | nonce | ciphertext.
func sealV1(t *testing.T, kek []byte, kid string, pt []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte{1}, nonce...)
	return aead.Seal(out, nonce, pt, []byte("keygate signing key v1 "+kid))
}

// TestDerivedSecret: replicas with one KEK derive one secret per purpose;
// another purpose or another sealing KEK derives another.
func TestDerivedSecret(t *testing.T) {
	kek := func(b byte) []byte { return bytes.Repeat([]byte{b}, rotation.KEKSize) }
	derive := func(keys [][]byte, purpose string) []byte {
		s, err := rotation.NewKeyring(keys)
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.DerivedSecret(purpose)
		if err != nil || len(d) != 32 {
			t.Fatalf("DerivedSecret(%q): %x, %v", purpose, d, err)
		}
		return d
	}
	base := derive([][]byte{kek(1)}, "p")
	cases := []struct {
		name    string
		keys    [][]byte
		purpose string
		same    bool
	}{
		{"same KEK, same purpose (another replica)", [][]byte{kek(1)}, "p", true},
		{"same sealing KEK, an old one beside it", [][]byte{kek(1), kek(2)}, "p", true},
		{"another purpose", [][]byte{kek(1)}, "q", false},
		{"another sealing KEK", [][]byte{kek(2), kek(1)}, "p", false},
	}
	for _, c := range cases {
		if got := derive(c.keys, c.purpose); bytes.Equal(got, base) != c.same {
			t.Errorf("%s: equal %v, want %v", c.name, !c.same, c.same)
		}
		if bytes.Equal(base, kek(1)) {
			t.Error("the derived secret is the KEK")
		}
	}
}
