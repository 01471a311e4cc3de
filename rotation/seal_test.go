package rotation_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

	k1, err := rotation.LoadKEK(rotation.KEKSource{DevDefault: dev}, log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dev)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := rotation.LoadKEK(rotation.KEKSource{DevDefault: dev}, log)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load of the dev key differs: %v", err)
	}

	env := newKEK(t)
	got, err := rotation.LoadKEK(rotation.KEKSource{Value: hex.EncodeToString(env), File: dev, DevDefault: dev}, log)
	if err != nil || !bytes.Equal(got, env) {
		t.Errorf("the environment value must win: %v", err)
	}
	if _, err := rotation.LoadKEK(rotation.KEKSource{Value: "nope"}, log); err == nil {
		t.Error("a malformed KEYGATE_KEY_ENCRYPTION_KEY was accepted")
	}
	if _, err := rotation.LoadKEK(rotation.KEKSource{File: filepath.Join(dir, "missing")}, log); err == nil {
		t.Error("a missing key file was accepted (it must not be created silently)")
	}
}
