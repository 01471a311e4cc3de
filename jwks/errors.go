package jwks

import (
	"errors"
	"fmt"
)

// Verification errors.
//
// Every error returned by Verify wraps exactly one of these, with detail
// appended after a colon ("token has expired: expired at ..., 2m0s ago"), so
// callers can branch with errors.Is while logs keep the specifics. The
// sentinel texts are short, fixed and safe to show to the token holder; the
// middleware sends them as error_description. The details may name claims
// and keys and are meant for logs.
var (
	// ErrMalformed: not a compact JWS, bad base64 or JSON, a missing kid or
	// exp, a claim of the wrong JSON type, or a "crit" header (no extension
	// is understood, so RFC 7515 §4.1.11 says reject).
	ErrMalformed = errors.New("token is malformed")
	// ErrAlgorithm: the header's alg is not in the accepted list (so "none"
	// and every HMAC algorithm are refused before any key is looked at), or it
	// differs from the alg the key is published for.
	ErrAlgorithm = errors.New("token signing algorithm is not accepted")
	// ErrUnknownKey: the kid is not in the issuer's key set, even after the
	// one refetch allowed per interval, or the keys could not be fetched.
	ErrUnknownKey = errors.New("token is signed by an unknown key")
	// ErrBadSignature: the signature does not verify with the key its kid
	// names (forged, altered, or signed by another key).
	ErrBadSignature = errors.New("token signature is invalid")
	// ErrExpired: exp is in the past, beyond the leeway.
	ErrExpired = errors.New("token has expired")
	// ErrNotYetValid: nbf (or iat) is in the future, beyond the leeway.
	ErrNotYetValid = errors.New("token is not yet valid (nbf)")
	// ErrWrongIssuer: iss is missing or is not the expected issuer.
	ErrWrongIssuer = errors.New("token was issued by an unexpected issuer")
	// ErrWrongAudience: aud is missing or names none of the expected
	// audiences.
	ErrWrongAudience = errors.New("token is not intended for this audience")
	// ErrWrongType: the typ header is missing or is not the expected type,
	// e.g. an ID token presented as an access token.
	ErrWrongType = errors.New("token is of the wrong type")
	// ErrInsufficientScope: the token is valid but its scope lacks one the
	// verifier or the route requires. The middleware answers 403, not 401.
	ErrInsufficientScope = errors.New("token lacks a required scope")
	// ErrUnknownClient: for client-signed tokens, the key server does not
	// know the identity in iss (it answered 404).
	ErrUnknownClient = errors.New("token is signed by an unknown client")
)

// sentinels is the order in which errorDescription looks for a sentinel.
var sentinels = [...]error{
	ErrInsufficientScope, ErrExpired, ErrNotYetValid, ErrBadSignature, ErrUnknownClient,
	ErrUnknownKey, ErrWrongAudience, ErrWrongIssuer, ErrWrongType, ErrAlgorithm, ErrMalformed,
	ErrDPoPUseNonce, ErrDPoPInvalidProof,
}

// errorDescription is the fixed, holder-safe text for err: the text of the
// sentinel it wraps, without the detail.
func errorDescription(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "token could not be verified"
}

// errorf wraps sentinel with detail. It is a function rather than inline
// fmt.Errorf calls so that every error has the "sentinel: detail" shape.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
