package rotation

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KEKSize is the length of a key-encryption key: AES-256.
const KEKSize = 32

// sealVersion prefixes every sealed blob so the format can change without guessing.
const sealVersion byte = 1

// ErrWrongKEK reports that a stored private key does not open under the configured
// key-encryption key: the key is wrong, or the stored bytes were altered. It is
// returned before anything is written, so stored keys are never overwritten.
var ErrWrongKEK = errors.New("the key-encryption key does not open the stored signing keys (wrong KEYGATE_KEY_ENCRYPTION_KEY or key file?)")

// Sealer encrypts private signing keys at rest with AES-256-GCM. The kid is bound
// in as associated data, so a sealed key copied onto another row does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key-encryption key.
func NewSealer(kek []byte) (*Sealer, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

func associatedData(kid string) []byte { return []byte("keygate signing key v1 " + kid) }

// Seal encrypts plaintext (a PKCS#8 private key) for the key kid.
func (s *Sealer) Seal(kid string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal key %s: nonce: %w", kid, err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+s.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, plaintext, associatedData(kid)), nil
}

// Open decrypts what Seal produced for kid. Any failure wraps ErrWrongKEK.
func (s *Sealer) Open(kid string, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("open key %s: malformed sealed key: %w", kid, ErrWrongKEK)
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], associatedData(kid))
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", kid, ErrWrongKEK)
	}
	return pt, nil
}

// ParseKEK decodes a key-encryption key written as base64 (standard or URL
// alphabet, padded or not) or hex, and insists on exactly 32 bytes.
func ParseKEK(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("key-encryption key is empty")
	}
	decoders := []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	}
	for _, dec := range decoders {
		if b, err := dec(s); err == nil && len(b) == KEKSize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("key-encryption key must be %d bytes written as base64 or hex (generate one with: openssl rand -base64 32)", KEKSize)
}

// KEKSource says where the key-encryption key comes from, in order of preference.
type KEKSource struct {
	Value      string // the key itself (KEYGATE_KEY_ENCRYPTION_KEY)
	File       string // a file holding it (keys.encryption_key_file)
	DevDefault string // a file created on first use when neither is set
}

// LoadKEK returns the key-encryption key from src. With neither Value nor File set
// it falls back to DevDefault, creating it (mode 0600) with a fresh random key if
// it does not exist, and logs a warning: fine on a laptop, not in production,
// where the key should live apart from the database it protects.
func LoadKEK(src KEKSource, log *slog.Logger) ([]byte, error) {
	switch {
	case src.Value != "":
		kek, err := ParseKEK(src.Value)
		if err != nil {
			return nil, fmt.Errorf("KEYGATE_KEY_ENCRYPTION_KEY: %w", err)
		}
		return kek, nil
	case src.File != "":
		return readKEKFile(src.File)
	case src.DevDefault == "":
		return nil, errors.New("no key-encryption key: set KEYGATE_KEY_ENCRYPTION_KEY or keys.encryption_key_file")
	}
	path := src.DevDefault
	kek, err := readKEKFile(path)
	if err == nil {
		log.Warn("using the development key-encryption key file beside the database; set KEYGATE_KEY_ENCRYPTION_KEY or keys.encryption_key_file in production", "path", path)
		return kek, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	kek = make([]byte, KEKSize)
	if _, err := rand.Read(kek); err != nil {
		return nil, fmt.Errorf("generate key-encryption key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory for key-encryption key %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) { // another process created it first
			return readKEKFile(path)
		}
		return nil, fmt.Errorf("create key-encryption key file %s: %w", path, err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(kek) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("write key-encryption key file %s: %w", path, werr)
	}
	log.Warn("created a development key-encryption key file beside the database; set KEYGATE_KEY_ENCRYPTION_KEY or keys.encryption_key_file in production", "path", path)
	return kek, nil
}

func readKEKFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key-encryption key file: %w", err)
	}
	kek, err := ParseKEK(string(b))
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	return kek, nil
}
