package rotation

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

// The sealed formats. Version 1 (written before keyrings) is
// 0x01 | nonce | ciphertext+tag, with "keygate signing key v1 <kid>" as associated
// data. Version 2 names the key-encryption key that sealed it, so opening under a
// keyring goes straight to the right key:
// 0x02 | KEK id (4 bytes) | nonce | ciphertext+tag, with the 5-byte header and
// "keygate signing key <kid>" as associated data. Both are read; version 2 is written.
const (
	sealV1      byte = 1
	sealVersion byte = 2
	kekIDSize        = 4
)

// ErrWrongKEK reports that a stored private key does not open under the configured
// key-encryption key: the key is wrong, or the stored bytes were altered. It is
// returned before anything is written, so stored keys are never overwritten.
var ErrWrongKEK = errors.New("the key-encryption key does not open the stored signing keys (wrong KEYGATE_KEY_ENCRYPTION_KEY or key file?)")

// kek is one key of a keyring.
type kek struct {
	id   [kekIDSize]byte
	aead cipher.AEAD
}

// Sealer encrypts private signing keys at rest with AES-256-GCM under a keyring
// of key-encryption keys: the first seals, every one opens. The kid is bound in as
// associated data, so a sealed key copied onto another row does not open.
type Sealer struct {
	keks []kek
	prk  []byte // HKDF pseudorandom key from the sealing key, for DerivedSecret
}

// NewSealer returns a Sealer for a single 32-byte key-encryption key.
func NewSealer(key []byte) (*Sealer, error) { return NewKeyring([][]byte{key}) }

// NewKeyring returns a Sealer for a keyring: keys[0] seals, all of them open. A
// key listed twice is refused, as a sign of a configuration mistake.
func NewKeyring(keys [][]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no key-encryption key")
	}
	s := &Sealer{}
	for i, key := range keys {
		if len(key) != KEKSize {
			return nil, fmt.Errorf("key-encryption key must be %d bytes, got %d", KEKSize, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("key-encryption key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key-encryption key: %w", err)
		}
		k := kek{aead: aead}
		copy(k.id[:], kekID(key))
		for j := range s.keks {
			if hmac.Equal(s.keks[j].id[:], k.id[:]) {
				return nil, fmt.Errorf("key-encryption key %d is the same as key %d (id %x)", i+1, j+1, k.id)
			}
		}
		s.keks = append(s.keks, k)
	}
	prk, err := hkdf.Extract(sha256.New, keys[0], []byte("keygate derived secrets v1"))
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: derive: %w", err)
	}
	s.prk = prk
	return s, nil
}

// DerivedSecret is a 32-byte secret for purpose (HKDF-SHA256 from the
// sealing key-encryption key): every replica configured with the same KEK
// derives the same one, so features that need a secret shared by replicas
// (DPoP server nonces) need no setting of their own, and the KEK itself
// never leaves this package. A new sealing KEK derives new secrets.
func (s *Sealer) DerivedSecret(purpose string) ([]byte, error) {
	b, err := hkdf.Expand(sha256.New, s.prk, purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("derive secret for %s: %w", purpose, err)
	}
	return b, nil
}

// kekID names a key-encryption key without revealing it: the first bytes of an
// HMAC-SHA256 under the key itself.
func kekID(key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("keygate key-encryption key id"))
	return mac.Sum(nil)[:kekIDSize]
}

// KEKID returns the short hexadecimal id of a key-encryption key, as written in
// every blob it seals (to tell keys apart in logs and documentation).
func KEKID(key []byte) string { return hex.EncodeToString(kekID(key)) }

// CurrentID is the id of the key-encryption key that seals.
func (s *Sealer) CurrentID() string { return hex.EncodeToString(s.keks[0].id[:]) }

func associatedDataV1(kid string) []byte { return []byte("keygate signing key v1 " + kid) }

func associatedData(header []byte, kid string) []byte {
	return append(bytes.Clone(header), "keygate signing key "+kid...)
}

// Seal encrypts plaintext (a PKCS#8 private key) for the key kid under the
// current (first) key-encryption key.
func (s *Sealer) Seal(kid string, plaintext []byte) ([]byte, error) {
	k := s.keks[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal key %s: nonce: %w", kid, err)
	}
	out := make([]byte, 0, 1+kekIDSize+len(nonce)+len(plaintext)+k.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, k.id[:]...)
	header := out
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, associatedData(header, kid)), nil
}

// Open decrypts what Seal produced for kid, under whichever key of the keyring
// sealed it. Any failure wraps ErrWrongKEK.
func (s *Sealer) Open(kid string, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, fmt.Errorf("open key %s: malformed sealed key: %w", kid, ErrWrongKEK)
	}
	switch sealed[0] {
	case sealV1: // no KEK id: try each key
		for _, k := range s.keks {
			ns := k.aead.NonceSize()
			if len(sealed) < 1+ns+k.aead.Overhead() {
				break
			}
			if pt, err := k.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], associatedDataV1(kid)); err == nil {
				return pt, nil
			}
		}
		return nil, fmt.Errorf("open key %s: %w", kid, ErrWrongKEK)
	case sealVersion:
		const h = 1 + kekIDSize
		if len(sealed) < h {
			break
		}
		header, known := sealed[:h], false
		for _, k := range s.keks {
			ns := k.aead.NonceSize()
			if !bytes.Equal(k.id[:], header[1:]) || len(sealed) < h+ns+k.aead.Overhead() {
				continue
			}
			known = true
			if pt, err := k.aead.Open(nil, sealed[h:h+ns], sealed[h+ns:], associatedData(header, kid)); err == nil {
				return pt, nil
			}
		}
		if !known {
			return nil, fmt.Errorf("open key %s: sealed under key-encryption key %x, which is not in the keyring: %w", kid, header[1:], ErrWrongKEK)
		}
		return nil, fmt.Errorf("open key %s: %w", kid, ErrWrongKEK)
	}
	return nil, fmt.Errorf("open key %s: malformed sealed key: %w", kid, ErrWrongKEK)
}

// UnderCurrent reports, from its header alone (nothing is opened), whether
// sealed is in the current format under the current (first) key-encryption
// key: what Reseal would leave alone. The start-up check uses it to count
// secrets still under an older key without opening each one.
func (s *Sealer) UnderCurrent(sealed []byte) bool {
	return len(sealed) > kekIDSize && sealed[0] == sealVersion && bytes.Equal(sealed[1:1+kekIDSize], s.keks[0].id[:])
}

// Reseal opens sealed (under any key of the keyring) and, unless it is already in
// the current format under the current key-encryption key, seals it again under
// that key. changed reports whether out is a new blob; when it is false, out is
// sealed itself. A blob that does not open wraps ErrWrongKEK.
func (s *Sealer) Reseal(kid string, sealed []byte) (out []byte, changed bool, err error) {
	pt, err := s.Open(kid, sealed)
	if err != nil {
		return nil, false, err
	}
	defer clear(pt)
	if s.UnderCurrent(sealed) {
		return sealed, false, nil
	}
	out, err = s.Seal(kid, pt)
	return out, err == nil, err
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

// KEKSource says where the key-encryption keys come from, in order of preference.
// Value and File each hold a keyring: one key, or several, the first of which
// seals while all of them open (how a KEK is changed without downtime).
type KEKSource struct {
	Value      string // KEYGATE_KEY_ENCRYPTION_KEY: keys separated by commas
	File       string // keys.encryption_key_file: one key per line, # comments
	DevDefault string // a file created on first use when neither is set

	// SealedKeysExist, when set, reports whether the store already holds sealed
	// private keys. A missing DevDefault file is then an error, never replaced by
	// a new key (under which the stored keys would not open).
	SealedKeysExist func() (bool, error)
}

// LoadKEK returns the keyring from src, current key first. With neither Value nor
// File set it falls back to DevDefault, creating it (mode 0600) with a fresh
// random key if it does not exist and the store holds no keys, and logs a
// warning: fine on a laptop, not in production, where the key should live apart
// from the database it protects.
func LoadKEK(src KEKSource, log *slog.Logger) ([][]byte, error) {
	switch {
	case src.Value != "":
		keys, err := parseKeyring(strings.Split(src.Value, ","))
		if err != nil {
			return nil, fmt.Errorf("KEYGATE_KEY_ENCRYPTION_KEY: %w", err)
		}
		return keys, nil
	case src.File != "":
		return readKEKFile(src.File)
	case src.DevDefault == "":
		return nil, errors.New("no key-encryption key: set KEYGATE_KEY_ENCRYPTION_KEY or keys.encryption_key_file")
	}
	path := src.DevDefault
	keys, err := readKEKFile(path)
	if err == nil {
		log.Warn("using the development key-encryption key file beside the database; set KEYGATE_KEY_ENCRYPTION_KEY or keys.encryption_key_file in production", "path", path)
		return keys, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if src.SealedKeysExist != nil {
		exist, err := src.SealedKeysExist()
		if err != nil {
			return nil, fmt.Errorf("check for stored keys before creating %s: %w", path, err)
		}
		if exist {
			return nil, fmt.Errorf("the development key-encryption key file %s is missing, but the database already holds signing keys sealed under it: "+
				"restore that file, or set KEYGATE_KEY_ENCRYPTION_KEY or keys.encryption_key_file to the key they were sealed with; "+
				"a new key file was not created and nothing was written", path)
		}
	}
	return createDevKEK(path, log)
}

// createDevKEK writes a fresh random key to path, which must not exist yet.
func createDevKEK(path string, log *slog.Logger) ([][]byte, error) {
	key := make([]byte, KEKSize)
	if _, err := rand.Read(key); err != nil {
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
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("write key-encryption key file %s: %w", path, werr)
	}
	log.Warn("created a development key-encryption key file beside the database; set KEYGATE_KEY_ENCRYPTION_KEY or keys.encryption_key_file in production", "path", path)
	return [][]byte{key}, nil
}

// readKEKFile reads a keyring file: one key per line, current key first; blank
// lines and lines starting with # are ignored.
func readKEKFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key-encryption key file: %w", err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	keys, err := parseKeyring(lines)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	return keys, nil
}

// parseKeyring parses each entry with ParseKEK. An empty list is an error.
func parseKeyring(entries []string) ([][]byte, error) {
	var keys [][]byte
	for i, e := range entries {
		k, err := ParseKEK(e)
		if err != nil {
			if len(entries) == 1 {
				return nil, err
			}
			return nil, fmt.Errorf("key %d of %d: %w", i+1, len(entries), err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("key-encryption key is empty")
	}
	return keys, nil
}
