package jwks

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// dpopSettings is the DPoP part of a MiddlewareConfig, validated, with the
// middleware's replay cache.
type dpopSettings struct {
	required   bool
	external   string // ExternalURL without a trailing slash, "" to use the request's
	algorithms []string
	algs       string // the algorithms for the challenge's algs attribute
	window     time.Duration
	replay     *replayCache
	keys       *dpopKeyCache
	nonces     *dpopNonces // nil: no server nonces
}

// newDPoPSettings validates the DPoP fields of mc. Like a nil verifier, a
// bad setting panics: it is a programming error, found at startup.
func newDPoPSettings(mc MiddlewareConfig) dpopSettings {
	var errs []error
	d := dpopSettings{required: mc.RequireDPoP, algorithms: DefaultDPoPAlgorithms(),
		window: orDefault(mc.DPoPWindow, DefaultDPoPWindow)}
	if mc.ExternalURL != "" {
		u, err := url.Parse(mc.ExternalURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			errs = append(errs, fmt.Errorf("ExternalURL %q: want an http(s) URL of scheme, host, optional port and path prefix", mc.ExternalURL))
		}
		d.external = strings.TrimSuffix(mc.ExternalURL, "/")
	}
	if mc.DPoPAlgorithms != nil {
		for _, a := range mc.DPoPAlgorithms {
			if !slices.Contains(dpopAlgorithms, a) {
				errs = append(errs, fmt.Errorf("DPoPAlgorithms: %q is not accepted (only %s)", a, strings.Join(dpopAlgorithms, ", ")))
			}
		}
		if len(mc.DPoPAlgorithms) == 0 {
			errs = append(errs, errors.New("DPoPAlgorithms: no algorithm given"))
		}
		d.algorithms = slices.Clone(mc.DPoPAlgorithms)
	}
	d.algs = strings.Join(d.algorithms, " ")
	if mc.DPoPWindow < 0 {
		errs = append(errs, fmt.Errorf("DPoPWindow: negative window %s", mc.DPoPWindow))
	}
	size := mc.DPoPReplayCacheSize
	switch {
	case size < 0:
		errs = append(errs, fmt.Errorf("DPoPReplayCacheSize: negative size %d", size))
	case size == 0:
		size = DefaultDPoPReplayCacheSize
	}
	var err error
	if d.nonces, err = nonceSettings(mc); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		panic(fmt.Sprintf("jwks: MiddlewareConfig: %v", errors.Join(errs...)))
	}
	d.replay, d.keys = newReplayCache(size), newDPoPKeyCache(dpopKeyCacheSize)
	return d
}

// requestURL is the URL the client addressed, for htu: ExternalURL followed
// by the path, or else this connection's scheme, the Host header and the
// path.
func (d *dpopSettings) requestURL(r *http.Request) string {
	path := r.URL.EscapedPath()
	if d.external != "" {
		return d.external + path
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + path
}

// bind checks that a verified token is presented as its binding requires
// (RFC 9449 §7): a token bound to a key (cnf.jkt) only under the DPoP
// scheme, with one fresh proof for this request signed by that key; a
// token under the DPoP scheme only if it is bound.
func (d *dpopSettings) bind(r *http.Request, token string, c *Claims, presentedDPoP bool, now time.Time) *authError {
	refuse := func(code, desc string, err error) *authError {
		return &authError{status: http.StatusUnauthorized, code: code, desc: desc, err: err, dpop: presentedDPoP}
	}
	switch {
	case !presentedDPoP && c.JKT != "":
		return refuse("invalid_token", `the token is bound to a key: send it as "Authorization: DPoP" with a DPoP proof`,
			errorf(ErrDPoPInvalidProof, "a token bound to key %s presented without DPoP", c.JKT))
	case !presentedDPoP:
		return nil
	case c.JKT == "":
		return refuse("invalid_token", "the token is not bound to a DPoP key (it has no cnf.jkt)",
			errors.New("jwks: a bearer token presented under the DPoP scheme"))
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return refuse("invalid_dpop_proof", "the request must carry exactly one DPoP header",
			errorf(ErrDPoPInvalidProof, "%d DPoP headers", len(proofs)))
	}
	p, err := verifyDPoPProof(proofs[0], DPoPProofCheck{Method: r.Method, URL: d.requestURL(r), AccessToken: token,
		JKT: c.JKT, Algorithms: d.algorithms, Window: d.window, Now: now}, d.keys)
	if err != nil {
		return refuse("invalid_dpop_proof", errorDescription(err), err)
	}
	if d.nonces != nil && !d.nonces.valid(p.Nonce, now) {
		desc := "the DPoP proof must carry the nonce of the DPoP-Nonce header"
		if p.Nonce != "" {
			desc = "the DPoP proof's nonce has expired; use the one of the DPoP-Nonce header"
		}
		return refuse("use_dpop_nonce", desc, errorf(ErrDPoPUseNonce, "nonce %q", p.Nonce))
	}
	switch d.replay.add(p.JKT, p.JTI, p.IssuedAt.Add(d.window), now) {
	case proofReplayed:
		return refuse("invalid_dpop_proof", "the DPoP proof has been used before",
			errorf(ErrDPoPInvalidProof, "jti %q of key %s replayed", p.JTI, p.JKT))
	case proofCacheFull:
		return &authError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable",
			desc: "too many DPoP requests at once; retry later", dpop: true,
			err: fmt.Errorf("jwks: DPoP replay cache full (%d proofs within the window)", d.replay.max)}
	}
	return nil
}

// sendNonce puts the current server nonce on the answer to a request that
// carries a DPoP proof, refused or not (RFC 9449 §9), when nonces are on.
func (d *dpopSettings) sendNonce(w http.ResponseWriter, r *http.Request, now time.Time) {
	if d.nonces != nil && len(r.Header.Values("DPoP")) > 0 {
		w.Header().Set("DPoP-Nonce", d.nonces.current(now))
	}
}
