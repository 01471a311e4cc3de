package kgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator is a software WebAuthn authenticator for server-level
// tests: a P-256 key pair and a sign counter, answering a relying party's
// challenges with real attestations ("none" format) and real ECDSA
// assertions, as a security key would. The browser tests use Chromium's
// virtual authenticator instead; this one lets a test forge what a browser
// never would (a replayed challenge, a counter going backwards, another
// user's handle). It is hand-written because the WebAuthn library has the
// relying party's side only.
type Authenticator struct {
	Origin     string // what clientDataJSON claims, e.g. http://localhost:8080
	RPID       string
	Key        *ecdsa.PrivateKey
	ID         []byte // the credential ID
	UserHandle []byte // set by Create from the options' user.id
	Count      uint32 // the sign counter the next answer carries (then incremented)
	NoUV       bool   // answer without the user-verified flag
	Backup     bool   // BE and BS flags
}

// NewAuthenticator returns an authenticator with a fresh key and
// credential ID for rpID, answering as origin.
func NewAuthenticator(t testing.TB, origin, rpID string) *Authenticator {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return &Authenticator{Origin: origin, RPID: rpID, Key: k, ID: id, Count: 1}
}

var b64 = base64.RawURLEncoding

// authData is the authenticator data: the RP ID hash, flags, the counter
// and, when attested, the credential.
func (a *Authenticator) authData(t testing.TB, attested []byte) []byte {
	h := sha256.Sum256([]byte(a.RPID))
	flags := byte(0x01) // UP
	if !a.NoUV {
		flags |= 0x04
	}
	if a.Backup {
		flags |= 0x08 | 0x10
	}
	if attested != nil {
		flags |= 0x40
	}
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.Count)
	a.Count++
	return append(out, attested...)
}

func (a *Authenticator) clientData(t testing.TB, typ, challenge string) []byte {
	t.Helper()
	cd, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return cd
}

// Create answers creation options (the JSON the server sends, with
// "publicKey") with a registration response, as the JSON the browser posts.
func (a *Authenticator) Create(t testing.TB, options []byte) []byte {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			User      struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("creation options: %v", err)
	}
	uh, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatalf("user.id: %v", err)
	}
	a.UserHandle = uh
	pub, err := a.Key.PublicKey.Bytes() // 0x04 | X | Y, 32 bytes each
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pub[1:33], -3: pub[33:65]})
	if err != nil {
		t.Fatal(err)
	}
	attested := make([]byte, 16) // a zero AAGUID
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(a.ID)))
	attested = append(append(attested, a.ID...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(t, attested)})
	if err != nil {
		t.Fatal(err)
	}
	return a.response(t, map[string]any{
		"clientDataJSON":    b64.EncodeToString(a.clientData(t, "webauthn.create", o.PublicKey.Challenge)),
		"attestationObject": b64.EncodeToString(att),
		"transports":        []string{"usb"},
	})
}

// Get answers request options with an assertion signed by the key, as the
// JSON the browser posts.
func (a *Authenticator) Get(t testing.TB, options []byte) []byte {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatalf("request options: %v", err)
	}
	cd := a.clientData(t, "webauthn.get", o.PublicKey.Challenge)
	ad := a.authData(t, nil)
	cdHash := sha256.Sum256(cd)
	signed := sha256.Sum256(append(append([]byte{}, ad...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.Key, signed[:])
	if err != nil {
		t.Fatal(err)
	}
	return a.response(t, map[string]any{
		"clientDataJSON":    b64.EncodeToString(cd),
		"authenticatorData": b64.EncodeToString(ad),
		"signature":         b64.EncodeToString(sig),
		"userHandle":        b64.EncodeToString(a.UserHandle),
	})
}

func (a *Authenticator) response(t testing.TB, resp map[string]any) []byte {
	t.Helper()
	out, err := json.Marshal(map[string]any{"id": b64.EncodeToString(a.ID), "rawId": b64.EncodeToString(a.ID),
		"type": "public-key", "response": resp, "clientExtensionResults": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
