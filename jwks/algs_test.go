package jwks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/keygate/keygate/jwks"
)

// TestES256AndEdDSA: EC P-256 and Ed25519 keys are published with exactly
// their public members, tokens signed with them verify when their algorithm
// is accepted, and no header can get a key used with an algorithm of another
// family.
func TestES256AndEdDSA(t *testing.T) {
	t.Parallel()
	k := newAlgKeys(t)
	doc, err := jwks.NewDocument([]jwks.PublicKey{
		{KID: "rsa", Algorithm: "RS256", Key: &k.rsa.PublicKey},
		{KID: "ec", Algorithm: "ES256", Key: &k.ec.PublicKey},
		{KID: "ed", Algorithm: "EdDSA", Key: k.edPub},
	})
	if err != nil {
		t.Fatal(err)
	}
	assertECAndEdMembers(t, doc)
	assertWrongPairingsRefused(t, k)

	const iss = "https://id.example.com"
	now := time.Now()
	cl := map[string]any{"iss": iss, "sub": "user-42", "aud": "api", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix()}
	local := func() *jwks.Document { return doc }
	newV := func(algs ...string) *jwks.Verifier {
		v, err := jwks.NewLocalVerifier(local, jwks.Config{Issuer: iss, Audience: []string{"api"}, Algorithms: algs, Logger: discardLogger})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	}
	all := newV("RS256", "ES256", "EdDSA")
	ctx := context.Background()
	esTok := signJWT(t, jwa.ES256, k.ec, header("ec"), cl)
	edTok := signJWT(t, jwa.EdDSA, k.ed, header("ed"), cl)
	rsTok := signJWT(t, jwa.RS256, k.rsa, header("rsa"), cl)
	for name, tok := range map[string]string{"ES256": esTok, "EdDSA": edTok, "RS256": rsTok} {
		if c, err := all.Verify(ctx, tok); err != nil || c.Subject != "user-42" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := all.KeyIDs(); len(got) != 3 {
		t.Errorf("KeyIDs = %q, want all three", got)
	}
	// The default accepts RS256 only.
	if _, err := newV().Verify(ctx, esTok); !errors.Is(err, jwks.ErrAlgorithm) {
		t.Errorf("ES256 under the default algorithms: %v, want ErrAlgorithm", err)
	}
	if _, err := newV().Verify(ctx, rsTok); err != nil {
		t.Errorf("RS256 under the default algorithms: %v", err)
	}
	for _, c := range []struct {
		name, tok string
		want      error
	}{
		// Headers naming another key's kid: the key's type and alg decide.
		{"ES256 header, Ed25519 key", signJWT(t, jwa.ES256, k.ec, header("ed"), cl), jwks.ErrAlgorithm},
		{"EdDSA header, EC key", signJWT(t, jwa.EdDSA, k.ed, header("ec"), cl), jwks.ErrAlgorithm},
		{"RS256 header, EC key", signJWT(t, jwa.RS256, k.rsa, header("ec"), cl), jwks.ErrAlgorithm},
		{"ES256 header, RSA key", signJWT(t, jwa.ES256, k.ec, header("rsa"), cl), jwks.ErrAlgorithm},
		{"tampered ES256", esTok[:len(esTok)-4] + "AAAA", jwks.ErrBadSignature},
		{"tampered EdDSA", edTok[:len(edTok)-4] + "AAAA", jwks.ErrBadSignature},
	} {
		if _, err := all.Verify(ctx, c.tok); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := jwks.NewLocalVerifier(local, jwks.Config{Issuer: iss, Algorithms: []string{"ES384"}}); err == nil {
		t.Error("Config.Algorithms ES384 accepted")
	}
}

// algKeys is one key of each family: RSA, EC P-256 and Ed25519.
type algKeys struct {
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	edPub ed25519.PublicKey
}

func newAlgKeys(t *testing.T) algKeys {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return algKeys{rsa: vkeys(t)[0], ec: ec, ed: ed, edPub: edPub}
}

// assertECAndEdMembers checks that doc's second and third keys, EC and
// Ed25519, are published with exactly their public members.
func assertECAndEdMembers(t *testing.T, doc *jwks.Document) {
	t.Helper()
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(doc.Body, &set); err != nil {
		t.Fatal(err)
	}
	if k := set.Keys[1]; len(k) != 7 || k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["x"] == nil || k["y"] == nil {
		t.Errorf("EC key published as %v", k)
	}
	if k := set.Keys[2]; len(k) != 6 || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["x"] == nil {
		t.Errorf("Ed25519 key published as %v", k)
	}
}

// assertWrongPairingsRefused checks that keys paired with an algorithm of
// another family, or private keys, are refused at publication.
func assertWrongPairingsRefused(t *testing.T, k algKeys) {
	t.Helper()
	for _, bad := range []jwks.PublicKey{
		{KID: "x", Algorithm: "RS256", Key: &k.ec.PublicKey},
		{KID: "x", Algorithm: "ES256", Key: &k.rsa.PublicKey},
		{KID: "x", Algorithm: "EdDSA", Key: &k.ec.PublicKey},
		{KID: "x", Algorithm: "ES256", Key: k.ec},
		{KID: "x", Algorithm: "EdDSA", Key: k.ed},
	} {
		if _, err := jwks.NewDocument([]jwks.PublicKey{bad}); err == nil {
			t.Errorf("NewDocument(%s with %T) succeeded", bad.Algorithm, bad.Key)
		}
	}
}
