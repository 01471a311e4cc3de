package jwks

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// maxIdentityBytes bounds the unverified "iss" a client token may use to
	// name its key; it is sent to the key server and used as a cache key.
	maxIdentityBytes = 256
	// maxClientEntries bounds the client-key cache, positive and negative
	// entries together. Identities come from unverified tokens, so without
	// a bound made-up ones would grow it forever. When it is full, negative
	// entries (404s, failures) go first; a client whose key is cached is
	// evicted only when every entry is a cached key.
	maxClientEntries = 10000
	// newClientBurst is how many lookups of identities without a cached key
	// may run at once before the global limit of one per
	// Config.UnknownKIDInterval applies.
	newClientBurst = 5
)

// ClientKeyVerifier verifies client-signed requests: JWTs that registered
// clients sign with their own RSA keys, so that a request proves which
// client sent it without any token from the issuer. The token's unverified "iss"
// names the client, whose public key is fetched as PEM from Keygate's key
// server (GET <keyServerURL>?identity=<iss>) and cached.
//
// It does not use jwk.Cache, which fits poorly here: it caches whole
// documents per URL and never forgets a registered URL, while here there is
// one small PEM answer per identity, identities are open-ended (they come
// from unverified tokens), unknown ones must be remembered briefly (404) and
// the cache must stay bounded. A map with expiries and a per-identity
// single flight does that in a few lines.
//
// Abuse: since "iss" is read before anything is verified, anyone can send
// tokens naming made-up clients. Lookups of identities without a cached key
// (never seen, or answered 404 or a failure) are therefore limited globally
// to a burst of 5, then one per Config.UnknownKIDInterval; a token refused
// by that limit fails with ErrUnknownKey and leaves no cache entry, so a
// flood of random identities costs the key server at most burst + 1 requests
// per interval. A new client whose lookup is refused is served once a lookup
// is free again (at the latest one interval after the flood stops; while it
// lasts, new clients compete with it). Clients whose keys are cached are not
// affected: their refreshes are not counted against the limit. A 404 is
// cached for the interval. Concurrent tokens naming one identity share one
// lookup. An identity longer than 256 bytes is refused before any lookup.
// The cache holds at most 10,000 identities; when full it evicts negative
// entries first, so flushing a cached client takes 10,000 cached clients
// and then costs the attacker one interval per eviction.
//
// A ClientKeyVerifier is safe for concurrent use.
type ClientKeyVerifier struct {
	cfg       *verifierConfig
	keyServer *url.URL

	mu       sync.Mutex
	entries  map[string]*clientEntry
	inflight map[string]*clientFetch
	// The global limit on lookups of identities without a cached key: a
	// token bucket of newClientBurst, refilled one per unknownKIDInterval.
	newTokens    int
	newRefilled  time.Time // when newTokens was last brought up to date
	limitedSince time.Time // when refusals were last logged

	stats counters
}

// clientEntry is what is known of one identity's keys.
type clientEntry struct {
	keys    []*rsa.PublicKey // nil when the identity is unknown or its keys never came
	err     error            // why keys is nil; nil for a 404 (see failure)
	fetched time.Time        // when the last fetch for it started
	expires time.Time        // when to ask the key server again
}

// clientFetch is one fetch in flight; waiters block on done.
type clientFetch struct {
	done  chan struct{}
	entry *clientEntry // set before done is closed
}

// NewClientKeyVerifier returns a verifier for client-signed tokens whose
// keys are served by keyServerURL (Keygate's GET /getkey). It makes no
// request until the first Verify.
//
// Config fields that apply: Audience (e.g. the URL of the endpoint the
// tokens are sent to; without it aud is not checked), Leeway or NoLeeway,
// Now, HTTPClient, KeyTTL (how long a key is cached), UnknownKIDInterval
// (least time between two fetches for one identity after a 404, a failure or
// a signature that does not verify, and the refill period of the global
// limit on lookups of uncached identities), MaxAgeWithoutExpiry and Logger.
// Setting any other field is an error.
func NewClientKeyVerifier(keyServerURL string, c Config) (*ClientKeyVerifier, error) {
	cfg, err := c.validate("NewClientKeyVerifier", forClient)
	if err != nil {
		return nil, err
	}
	u, err := parseHTTPURL(keyServerURL)
	if err != nil {
		return nil, fmt.Errorf("jwks: NewClientKeyVerifier: %w", err)
	}
	return &ClientKeyVerifier{
		cfg:       cfg,
		keyServer: u,
		entries:   make(map[string]*clientEntry),
		inflight:  make(map[string]*clientFetch),
		newTokens: newClientBurst,
	}, nil
}

// Stats returns the verifier's counters; Fetches counts key-server requests.
func (cv *ClientKeyVerifier) Stats() Stats { return cv.stats.snapshot() }

// Verify checks a client-signed token and returns its claims; Issuer is the
// client's identity.
//
// The header's alg must be RS256 (the key server's keys are RSA and nothing
// else is accepted, so "none" and HMAC are refused first); no header member
// can supply a key. exp is required (unless Config.MaxAgeWithoutExpiry
// allows its absence); exp, nbf and iat are checked with the
// leeway, and aud when Config.Audience is set. A signature that does not
// verify with the cached key causes one refetch (the client may have
// replaced its key), at most once per Config.UnknownKIDInterval per identity.
func (cv *ClientKeyVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	return cv.stats.counted(cv.verify(ctx, token))
}

func (cv *ClientKeyVerifier) verify(ctx context.Context, token string) (*Claims, error) {
	buf := getScratch()
	defer putScratch(buf)
	t, err := parseCompact(token, buf)
	if err != nil {
		return nil, err
	}
	if t.alg != "RS256" {
		return nil, errorf(ErrAlgorithm, "alg %q is not accepted for client-signed tokens (only RS256)", t.alg)
	}
	// Unverified: read here only to learn whose key to fetch. The claims
	// are acted on only after the signature over these same bytes has
	// verified with that key.
	m, err := t.decodePayload()
	if err != nil {
		return nil, err
	}
	iss, _ := m["iss"].(string)
	if iss == "" || len(iss) > maxIdentityBytes {
		return nil, errorf(ErrMalformed, `no "iss" (the client identity), or one longer than %d bytes`, maxIdentityBytes)
	}

	e, err := cv.keysFor(ctx, iss, false)
	if err != nil {
		return nil, err
	}
	if !cv.verifiesWithAny(t, e) {
		if e.keys != nil {
			// Perhaps the client replaced its key: ask again (rate-limited).
			if e, err = cv.keysFor(ctx, iss, true); err != nil {
				return nil, err
			}
		}
		if !cv.verifiesWithAny(t, e) {
			if e.keys == nil {
				return nil, e.failure(iss)
			}
			return nil, errorf(ErrBadSignature, "does not verify with the registered key of client %q", iss)
		}
	}

	c, err := claimsFromMap(m, t.kid)
	if err != nil {
		return nil, err
	}
	if err := checkAudience(c, cv.cfg.audiences); err != nil {
		return nil, err
	}
	if c.Expiry.IsZero() && cv.cfg.maxAge > 0 {
		// No exp (allowed by MaxAgeWithoutExpiry): the issue time bounds its life.
		if c.IssuedAt.IsZero() {
			return nil, errorf(ErrMalformed, `token has neither "exp" nor "iat"`)
		}
		c.Expiry = c.IssuedAt.Add(cv.cfg.maxAge)
	}
	if err := checkTimes(c, cv.cfg.now(), cv.cfg.leeway); err != nil {
		return nil, err
	}
	return c, nil
}

// verifiesWithAny tries each of the client's keys (a PEM answer carries no
// kid to choose by; clients have one key, or two while replacing one).
func (cv *ClientKeyVerifier) verifiesWithAny(t compactToken, e *clientEntry) bool {
	for _, k := range e.keys {
		if t.verifySignature("RS256", k) == nil {
			return true
		}
	}
	return false
}

// keysFor returns the cached entry for iss, fetching it when absent or
// expired, or, with refetch, when the entry is older than the unknown-kid
// interval. Concurrent callers for one identity share one fetch, which runs
// on its own goroutine so that a caller giving up (ctx) does not cancel it
// for the others.
func (cv *ClientKeyVerifier) keysFor(ctx context.Context, iss string, refetch bool) (*clientEntry, error) {
	cv.mu.Lock()
	now := cv.cfg.now()
	prev := cv.entries[iss]
	if prev != nil {
		if !refetch && now.Before(prev.expires) {
			cv.mu.Unlock()
			return prev, nil
		}
		if refetch && now.Sub(prev.fetched) < cv.cfg.unknownKIDInterval {
			cv.mu.Unlock()
			return prev, nil
		}
	}
	call := cv.inflight[iss]
	if call == nil {
		if (prev == nil || prev.keys == nil) && !cv.allowNewClient(now) {
			cv.mu.Unlock()
			return nil, errorf(ErrUnknownKey, "the key of client %q is not cached, and key-server lookups for uncached clients are rate-limited (a burst of %d, then one per %s); retry later",
				iss, newClientBurst, cv.cfg.unknownKIDInterval)
		}
		call = &clientFetch{done: make(chan struct{})}
		cv.inflight[iss] = call
		if refetch {
			cv.stats.unknownKIDRefetches.Add(1)
		}
		go cv.fetch(iss, prev, call, now)
	}
	cv.mu.Unlock()

	select {
	case <-call.done:
		return call.entry, nil
	case <-ctx.Done():
		return nil, errorf(ErrUnknownKey, "waiting for the key of client %q: %w", iss, ctx.Err())
	}
}

func (cv *ClientKeyVerifier) fetch(iss string, prev *clientEntry, call *clientFetch, now time.Time) {
	cv.stats.fetches.Add(1)
	keys, err := cv.fetchKeys(iss)
	e := &clientEntry{fetched: now}
	switch {
	case err == nil:
		e.keys, e.expires = keys, now.Add(cv.cfg.keyTTL)
	case errors.Is(err, ErrUnknownClient):
		// Authoritative: a client that was deleted loses its key at once.
		// No err is kept (failure rebuilds it), so that a negative entry
		// costs little more than its key.
		e.expires = now.Add(cv.cfg.unknownKIDInterval)
	default:
		cv.stats.refreshFailures.Add(1)
		e.expires = now.Add(cv.cfg.unknownKIDInterval)
		if prev != nil && prev.keys != nil {
			e.keys = prev.keys // keep verifying with the last good key
			cv.cfg.logger.Warn("jwks: fetching a client key failed; still using the cached one",
				"identity", iss, "err", err)
		} else {
			e.err = errorf(ErrUnknownKey, "the key of client %q could not be fetched: %w", iss, err)
			cv.cfg.logger.Warn("jwks: fetching a client key failed", "identity", iss, "err", err)
		}
	}

	cv.mu.Lock()
	if _, ok := cv.entries[iss]; !ok && len(cv.entries) >= maxClientEntries {
		cv.evictOne(cv.cfg.now())
	}
	cv.entries[iss] = e
	delete(cv.inflight, iss)
	cv.mu.Unlock()
	call.entry = e
	close(call.done)
}

// failure is why e, which holds no key, cannot verify iss's tokens.
func (e *clientEntry) failure(iss string) error {
	if e.err != nil {
		return e.err
	}
	return errorf(ErrUnknownClient, "the key server does not know client %q", iss)
}

// allowNewClient takes a token from the global bucket that limits lookups of
// identities without a cached key (cv.mu held). The bucket holds
// newClientBurst tokens and gains one per unknownKIDInterval, so in any
// interval at most newClientBurst+1 such lookups start.
func (cv *ClientKeyVerifier) allowNewClient(now time.Time) bool {
	iv := cv.cfg.unknownKIDInterval
	switch {
	case cv.newTokens >= newClientBurst || cv.newRefilled.IsZero():
		cv.newRefilled = now // full: the next token is earned from now on
	case now.After(cv.newRefilled):
		if n := now.Sub(cv.newRefilled) / iv; n > 0 {
			cv.newTokens = int(min(int64(newClientBurst), int64(cv.newTokens)+int64(n)))
			cv.newRefilled = cv.newRefilled.Add(n * iv)
		}
	}
	if cv.newTokens > 0 {
		cv.newTokens--
		return true
	}
	if now.Sub(cv.limitedSince) >= iv || now.Before(cv.limitedSince) {
		cv.limitedSince = now
		cv.cfg.logger.Warn("jwks: lookups of uncached client keys are being rate-limited (a flood of unknown identities?)",
			"burst", newClientBurst, "interval", iv)
	}
	return false
}

// evictOne makes room in the full cache (cv.mu held). Preference: an
// expired negative entry, any negative entry, an expired key, any key; so
// identities an attacker makes up (all negative) never push out a cached
// client while there is a negative entry to drop.
func (cv *ClientKeyVerifier) evictOne(now time.Time) {
	victim, best := "", 4
	for k, e := range cv.entries {
		rank := 0
		if e.keys != nil {
			rank += 2
		}
		if now.Before(e.expires) {
			rank++
		}
		if rank < best {
			victim, best = k, rank
			if rank == 0 {
				break
			}
		}
	}
	delete(cv.entries, victim)
}

// fetchKeys asks the key server for iss's public keys: one or more PEM
// blocks ("PUBLIC KEY", or "RSA PUBLIC KEY"); non-RSA keys are skipped.
func (cv *ClientKeyVerifier) fetchKeys(iss string) ([]*rsa.PublicKey, error) {
	u := *cv.keyServer
	q := u.Query()
	q.Set("identity", iss)
	u.RawQuery = q.Encode()
	_, body, err := getDocument(context.Background(), cv.cfg.httpClient, u.String(), "application/x-pem-file, text/plain")
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusNotFound {
		return nil, errorf(ErrUnknownClient, "the key server does not know client %q", iss)
	}
	if err != nil {
		return nil, err
	}
	var keys []*rsa.PublicKey
	for rest := body; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key server answer for %q: %w", iss, err)
		}
		if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() >= minRSABits {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("key server answer for %q holds no RSA public key of at least %d bits", iss, minRSABits)
	}
	return keys, nil
}
