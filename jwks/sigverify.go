package jwks

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
)

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
