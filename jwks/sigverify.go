package jwks

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"math/big"
)

// verifySig checks a JWS signature over signingInput with pub under alg.
// The key's type must be the one alg calls for (RSA for RS and PS, ECDSA
// P-256 for ES256, Ed25519 for EdDSA); any other pairing is refused, so a
// header naming one algorithm can never get a key of another family used.
func verifySig(alg string, pub crypto.PublicKey, signingInput, sig []byte) error {
	switch alg {
	case "ES256":
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return fmt.Errorf("ES256 needs a P-256 key, have %T", pub)
		}
		// RFC 7518 §3.4: R and S as 32-byte big-endian integers, concatenated.
		if len(sig) != 64 {
			return fmt.Errorf("ES256 signature of %d bytes, want 64", len(sig))
		}
		d := sha256.Sum256(signingInput)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, d[:], r, s) {
			return errors.New("ecdsa: verification error")
		}
		return nil
	case "EdDSA":
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("EdDSA needs an Ed25519 key, have %T", pub)
		}
		if !ed25519.Verify(k, signingInput, sig) {
			return errors.New("ed25519: verification error")
		}
		return nil
	}
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%s needs an RSA key, have %T", alg, pub)
	}
	return verifyRSA(alg, k, signingInput, sig)
}

// verifyRSA checks an RSA JWS signature (RFC 7518 §3.3 and §3.5) over
// signingInput with pub, for alg, which the caller has already matched
// against the accepted algorithms and the key.
//
// It calls crypto/rsa directly instead of going through jwx, on purpose:
// jws.Verify parses the whole token again (measured at about 70% of the
// raw RSA rate for the verifier as a whole), and even jwx's per-algorithm
// jws.Verifier allocates a hash.Hash and converts the key by reflection on
// every call, a few percent more. The check is the one jwx makes (the same
// crypto/rsa functions); TestVerifyRSAMatchesJWX holds the two together for
// all six algorithms. PSS requires the salt length RFC 7518 §3.5 mandates
// (the hash size).
func verifyRSA(alg string, pub *rsa.PublicKey, signingInput, sig []byte) error {
	switch alg {
	case "RS256":
		d := sha256.Sum256(signingInput)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
	case "RS384":
		d := sha512.Sum384(signingInput)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA384, d[:], sig)
	case "RS512":
		d := sha512.Sum512(signingInput)
		return rsa.VerifyPKCS1v15(pub, crypto.SHA512, d[:], sig)
	case "PS256":
		d := sha256.Sum256(signingInput)
		return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "PS384":
		d := sha512.Sum384(signingInput)
		return rsa.VerifyPSS(pub, crypto.SHA384, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "PS512":
		d := sha512.Sum512(signingInput)
		return rsa.VerifyPSS(pub, crypto.SHA512, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return fmt.Errorf("unsupported algorithm %q", alg)
}
