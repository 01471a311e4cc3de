package idp

// DPoP (RFC 9449) on the issuer side: the proofs a token request and a
// request to Keygate's own protected endpoints carry, the replay record, and
// the server nonces. The proof itself is verified by jwks.VerifyDPoPProof,
// the one verifier the SDK uses too; this file adds what only a server with a
// store can do.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/store"
)

// TokenTypeDPoP is the token_type of a DPoP-bound access token (RFC 9449 §5).
const TokenTypeDPoP = "DPoP"

// The RFC 9449 error codes.
const (
	ErrCodeInvalidDPoPProof = "invalid_dpop_proof"
	ErrCodeUseDPoPNonce     = "use_dpop_nonce"
)

// DefaultDPoPNonceLifetime is how long one server nonce is current when
// DPoPConfig.NonceLifetime is zero; the previous one stays accepted as long
// again, so a client's nonce lasts between one and two lifetimes.
const DefaultDPoPNonceLifetime = 5 * time.Minute

// DPoPConfig is the provider's DPoP policy.
type DPoPConfig struct {
	// NonceSecret, when set, makes the provider require server nonces (RFC
	// 9449 §8, §9): a nonce is an HMAC of the current time slot under this
	// secret, so every replica with the same secret issues and accepts the
	// same nonces without sharing any state. nil: no nonces.
	NonceSecret []byte
	// NonceLifetime is the length of a nonce's time slot; zero means
	// DefaultDPoPNonceLifetime.
	NonceLifetime time.Duration
	// Window is how far a proof's iat may be from now, either way; zero
	// means jwks.DefaultDPoPWindow. Proofs are remembered this long (plus a
	// second) to refuse replays.
	Window time.Duration
}

// Confirmation is the cnf claim of a DPoP-bound access token (RFC 9449 §6.1).
type Confirmation struct {
	JKT string `json:"jkt"` // the RFC 7638 SHA-256 thumbprint of the client's DPoP key
}

// DPoPAlgorithms are the proof algorithms Keygate accepts, for discovery's
// dpop_signing_alg_values_supported and the algs of its DPoP challenges.
func (p *Provider) DPoPAlgorithms() []string { return jwks.DefaultDPoPAlgorithms() }

func (p *Provider) dpopWindow() time.Duration {
	if p.cfg.DPoP.Window > 0 {
		return p.cfg.DPoP.Window
	}
	return jwks.DefaultDPoPWindow
}

func (p *Provider) nonceLifetime() time.Duration {
	if p.cfg.DPoP.NonceLifetime > 0 {
		return p.cfg.DPoP.NonceLifetime
	}
	return DefaultDPoPNonceLifetime
}

// nonceFor is the nonce of one time slot: base64url of the first 16 bytes of
// HMAC-SHA256(secret, "keygate dpop nonce" || slot).
func (p *Provider) nonceFor(slot int64) string {
	mac := hmac.New(sha256.New, p.cfg.DPoP.NonceSecret)
	mac.Write([]byte("keygate dpop nonce"))
	mac.Write(binary.BigEndian.AppendUint64(nil, uint64(slot)))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

func (p *Provider) nonceSlot() int64 { return p.now().UnixNano() / int64(p.nonceLifetime()) }

// DPoPNonce is the nonce clients must put in their proofs now (the value of
// the DPoP-Nonce response header), "" when nonces are not required.
func (p *Provider) DPoPNonce() string {
	if len(p.cfg.DPoP.NonceSecret) == 0 {
		return ""
	}
	return p.nonceFor(p.nonceSlot())
}

// nonceCurrent reports whether n is the nonce of this slot or the previous
// one (a nonce handed out just before the slot changed stays good).
func (p *Provider) nonceCurrent(n string) bool {
	slot := p.nonceSlot()
	return n != "" && (hmac.Equal([]byte(n), []byte(p.nonceFor(slot))) || hmac.Equal([]byte(n), []byte(p.nonceFor(slot-1))))
}

func invalidDPoPProof(f string, a ...any) *Error {
	return oauthErr(http.StatusBadRequest, ErrCodeInvalidDPoPProof, f, a...)
}

// checkProof verifies the one DPoP proof of a request (jwks.VerifyDPoPProof)
// for method and url, bound to token when it is not empty; then the server
// nonce, when nonces are required; then records its jti (per key) in the
// store until its iat window has passed, so that it is single-use across
// replicas. The refusal is an *Error with code invalid_dpop_proof or
// use_dpop_nonce, status 400 (the resource endpoints answer 401 with a
// challenge instead).
func (p *Provider) checkProof(ctx context.Context, proofs []string, method, url, token, jkt string) (*jwks.DPoPProof, error) {
	switch {
	case len(proofs) == 0:
		return nil, invalidDPoPProof("a DPoP proof is required")
	case len(proofs) > 1:
		return nil, invalidDPoPProof("send exactly one DPoP header")
	}
	now := p.now()
	proof, err := jwks.VerifyDPoPProof(proofs[0], jwks.DPoPProofCheck{Method: method, URL: url, AccessToken: token, JKT: jkt,
		Algorithms: p.DPoPAlgorithms(), Window: p.dpopWindow(), Now: now})
	if err != nil {
		p.log.Info("DPoP proof refused", "url", url, "err", err)
		return nil, &Error{Code: ErrCodeInvalidDPoPProof, Status: http.StatusBadRequest, Description: jwks.ErrDPoPInvalidProof.Error() + proofDetail(err), cause: err}
	}
	if len(p.cfg.DPoP.NonceSecret) > 0 && !p.nonceCurrent(proof.Nonce) {
		msg := "the DPoP proof must carry the nonce of the DPoP-Nonce header"
		if proof.Nonce != "" {
			msg = "the DPoP proof's nonce has expired; use the one of the DPoP-Nonce header"
		}
		return nil, oauthErr(http.StatusBadRequest, ErrCodeUseDPoPNonce, "%s", msg)
	}
	// Kept one second past the last instant the proof's iat is accepted.
	until := proof.IssuedAt.Add(p.dpopWindow() + time.Second)
	if err := p.cfg.Store.RecordDPoPProof(ctx, proof.JKT, digest(proof.JTI), until, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, invalidDPoPProof("the DPoP proof was already used (its jti is single-use)")
		}
		return nil, serverError(err)
	}
	return proof, nil
}

// proofDetail is the part of a verifier error after its sentinel's text
// (": htu ... is not the request's URL ..."): the verifier's details name
// only what the client itself sent, so they are safe to show it.
func proofDetail(err error) string {
	_, detail, _ := strings.Cut(err.Error(), jwks.ErrDPoPInvalidProof.Error())
	return detail
}

// tokenProof checks the DPoP proof of a token request by client c (htm POST,
// htu the token endpoint as discovery publishes it, never a URL rebuilt from
// request headers) and records the key it proves in r; a client registered
// with dpop_bound_access_tokens must send one.
func (p *Provider) tokenProof(ctx context.Context, r *Request, c *Client) error {
	if len(r.DPoP) == 0 {
		if c.DPoPBoundAccessTokens {
			return invalidDPoPProof("client %q must send a DPoP proof: its tokens are DPoP-bound", c.ID)
		}
		return nil
	}
	proof, err := p.checkProof(ctx, r.DPoP, http.MethodPost, p.TokenEndpoint(), "", "")
	if err != nil {
		return err
	}
	r.dpopJKT = proof.JKT
	return nil
}

// checkBoundKey refuses to redeem what (a refresh token, an authorization
// code) bound to the DPoP key bound (a thumbprint; "" when it is not bound)
// unless the request proved possession of that key (jkt, from tokenProof):
// without a proof invalid_dpop_proof, with another key invalid_grant.
func checkBoundKey(what, bound, jkt string) error {
	switch {
	case bound == "":
		return nil
	case jkt == "":
		return invalidDPoPProof("this %s is bound to a DPoP key: send a DPoP proof signed with it", what)
	case jkt != bound:
		return invalidGrant("the %s is bound to another DPoP key", what)
	}
	return nil
}

// CheckResourceProof checks the DPoP proof presented with a DPoP-bound
// access token at one of Keygate's own protected endpoints (RFC 9449 §7):
// one proof, for this method and url (the issuer's external URL of the
// endpoint), with ath the token's hash, from the key of the token's cnf.jkt,
// single-use, and with the current nonce when nonces are required.
func (p *Provider) CheckResourceProof(ctx context.Context, claims *AccessClaims, token string, proofs []string, method, url string) error {
	if claims.Confirmation == nil || claims.Confirmation.JKT == "" {
		return invalidDPoPProof("the access token is not DPoP-bound; present it with the Bearer scheme")
	}
	_, err := p.checkProof(ctx, proofs, method, url, token, claims.Confirmation.JKT)
	return err
}
