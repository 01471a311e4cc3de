package web

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// Metrics are Keygate's Prometheus collectors, registered on a registry the
// caller owns (no global state, so tests can run servers side by side).
type Metrics struct {
	rotations    *prometheus.CounterVec
	jwks         *prometheus.CounterVec
	jwksCodes    map[int]prometheus.Counter // pre-resolved, so counting costs no label lookup
	tokensIssued *prometheus.CounterVec     // {grant}
	tokenErrors  *prometheus.CounterVec     // {grant, error}
	logins       *prometheus.CounterVec     // {method, outcome}

	mu       sync.Mutex         // guards the rotation observer below
	lastKeys *rotation.Snapshot // the last key set seen by KeySetLoaded
	ownDone  bool               // Rotated counted a change not yet seen by KeySetLoaded
}

// ReasonObserved labels a signing-key change this process saw in the store
// but cannot attribute (made elsewhere, and the stored states do not tell
// whether it was scheduled or manual).
const ReasonObserved rotation.Reason = "observed"

// Bounded label values. Grants outside grantLabels count as "other", error
// codes outside errorLabels as "other": no label ever holds raw request input.
var (
	grantLabels = map[string]string{
		idp.GrantClientCredentials: "client_credentials",
		idp.GrantPassword:          "password",
		idp.GrantRefreshToken:      "refresh_token",
		idp.GrantJWTBearer:         "jwt_bearer",
		idp.GrantAuthorizationCode: "authorization_code",
		idp.GrantDeviceCode:        "device_code",
	}
	// The RFC 6749 §5.2 codes, server_error and temporarily_unavailable
	// (§4.1.2.1), and too_many_requests, Keygate's code for a throttled
	// password grant.
	errorLabels = map[string]bool{"invalid_request": true, "invalid_client": true, "invalid_grant": true,
		"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
		"server_error": true, "temporarily_unavailable": true, "too_many_requests": true,
		// RFC 8628 §3.5: the device grant's answers while polling.
		"authorization_pending": true, "slow_down": true, "expired_token": true, "access_denied": true}
)

// Login methods and outcomes, the values of keygate_logins_total's labels.
const (
	LoginPasswordGrant = "password_grant" // POST /token, grant_type=password
	LoginForm          = "form"           // the HTML login form
	LoginScript        = "script"         // POST /login/assertion (and /login with a JWT)
	LoginPasskey       = "passkey"        // POST /login/passkey: a WebAuthn assertion

	LoginSuccess   = "success"
	LoginInvalid   = "invalid"   // wrong or missing credentials, unknown user or client
	LoginThrottled = "throttled" // refused by the login throttle (429)
	LoginError     = "error"     // the server failed (5xx)
)

// grantLabel is the bounded label for a grant_type value.
func grantLabel(gt string) string {
	if l, ok := grantLabels[gt]; ok {
		return l
	}
	return "other"
}

// errorLabel is the bounded label for an OAuth error code.
func errorLabel(code string) string {
	if errorLabels[code] {
		return code
	}
	return "other"
}

// counterVec is a counter vector with the given name, help text and label
// names, not yet registered.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// NewMetrics registers the collectors on reg. keys supplies the current snapshot
// for the key gauges; now is the clock.
func NewMetrics(reg *prometheus.Registry, keys func() *rotation.Snapshot, now func() time.Time) *Metrics {
	m := &Metrics{
		rotations: counterVec("keygate_key_rotations_total",
			"Changes of the signing key seen by this process, made by it or by another replica or the CLI, by reason (initial, scheduled, manual, revocation, observed).",
			"reason"),
		jwks: counterVec("keygate_jwks_requests_total",
			"Requests for the JWKS, by status code (304 means a cache revalidated).",
			"code"),
		jwksCodes: map[int]prometheus.Counter{},
		tokensIssued: counterVec("keygate_tokens_issued_total",
			"Successful token endpoint responses, by grant (client_credentials, password, refresh_token, jwt_bearer, authorization_code, other).",
			"grant"),
		tokenErrors: counterVec("keygate_token_errors_total",
			"Failed token endpoint requests, by grant and RFC 6749 error code (other for anything else).",
			"grant", "error"),
		logins: counterVec("keygate_logins_total",
			"Password, passkey and script logins, by method (password_grant, form, passkey, script) and outcome (success, invalid, throttled, error).",
			"method", "outcome"),
	}
	for _, g := range grantLabels {
		m.tokensIssued.WithLabelValues(g)
	}
	for _, method := range []string{LoginPasswordGrant, LoginForm, LoginPasskey, LoginScript} {
		for _, o := range []string{LoginSuccess, LoginInvalid, LoginThrottled, LoginError} {
			m.logins.WithLabelValues(method, o)
		}
	}
	for _, code := range []int{200, 304, 405, 503} {
		m.jwksCodes[code] = m.jwks.WithLabelValues(strconv.Itoa(code))
	}
	for _, r := range []rotation.Reason{rotation.ReasonInitial, rotation.ReasonScheduled, rotation.ReasonManual, rotation.ReasonRevocation, ReasonObserved} {
		m.rotations.WithLabelValues(string(r))
	}
	keyAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "keygate_signing_key_age_seconds",
		Help: "Seconds since the current signing key became active.",
	}, func() float64 {
		s := keys()
		if s == nil {
			return 0
		}
		if k, ok := s.Find(s.Signing.KID); ok {
			return now().Sub(k.ActivateAt).Seconds()
		}
		return 0
	})
	reg.MustRegister(m.rotations, m.jwks, m.tokensIssued, m.tokenErrors, m.logins, keyAge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, st := range []store.KeyState{store.KeyNext, store.KeyActive, store.KeyRetired, store.KeyRevoked} {
		st := st
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "keygate_keys",
			Help:        "Signing keys in the key set, by state.",
			ConstLabels: prometheus.Labels{"state": string(st)},
		}, func() float64 {
			s := keys()
			if s == nil {
				return 0
			}
			n := 0
			for _, k := range s.Keys {
				if k.State == st {
					n++
				}
			}
			return float64(n)
		}))
	}
	return m
}

// Rotated counts a signing-key change this process made, with the reason it
// knows; pass it as rotation.Config.OnRotate. KeySetLoaded then leaves that
// change alone.
func (m *Metrics) Rotated(r rotation.Reason) {
	m.rotations.WithLabelValues(string(r)).Inc()
	m.mu.Lock()
	m.ownDone = true
	m.mu.Unlock()
}

// KeySetLoaded counts the signing-key changes made elsewhere (another
// replica, the CLI) as this process's manager loads them; call it from
// rotation.Config.OnChange. The rule: when a loaded set's active kid differs
// from the previous set's, that is one rotation, unless Rotated already
// counted it (this process made it). Its reason is read from the two sets:
// revocation when the old active key is now revoked; for a key that was
// next, scheduled when it became active at or after its planned activation
// time, manual when earlier (keygate keys rotate --force, or a rotation
// once the key was published long enough); observed otherwise (the new key
// was never seen as next, or the old one vanished). The first set loaded is
// the baseline, not a rotation; several rotations between two loads count
// as one.
func (m *Metrics) KeySetLoaded(s *rotation.Snapshot) {
	if s == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, own := m.lastKeys, m.ownDone
	m.lastKeys = s
	if prev == nil || prev.Signing.KID == s.Signing.KID {
		if prev == nil {
			m.ownDone = false
		}
		return
	}
	m.ownDone = false
	if own {
		return
	}
	m.rotations.WithLabelValues(string(observedReason(prev, s))).Inc()
}

// observedReason is why the signing key changed from prev to cur, as far as
// the stored states tell; see KeySetLoaded.
func observedReason(prev, cur *rotation.Snapshot) rotation.Reason {
	if old, ok := cur.Find(prev.Signing.KID); ok && old.State == store.KeyRevoked {
		return rotation.ReasonRevocation
	}
	was, ok := prev.Find(cur.Signing.KID)
	now, ok2 := cur.Find(cur.Signing.KID)
	if !ok || !ok2 || was.State != store.KeyNext {
		return ReasonObserved
	}
	if now.ActivateAt.Before(was.ActivateAt) {
		return rotation.ReasonManual
	}
	return rotation.ReasonScheduled
}

// TokenIssued counts a successful token response for grant_type gt.
func (m *Metrics) TokenIssued(gt string) { m.tokensIssued.WithLabelValues(grantLabel(gt)).Inc() }

// TokenFailed counts a failed token request for grant_type gt with the
// OAuth error code.
func (m *Metrics) TokenFailed(gt, code string) {
	m.tokenErrors.WithLabelValues(grantLabel(gt), errorLabel(code)).Inc()
}

// Login counts a login attempt; method and outcome are the Login* constants.
func (m *Metrics) Login(method, outcome string) { m.logins.WithLabelValues(method, outcome).Inc() }

// JWKSServed counts one JWKS response; pass it to the jwks publisher.
func (m *Metrics) JWKSServed(status int) {
	if c, ok := m.jwksCodes[status]; ok {
		c.Inc()
		return
	}
	m.jwks.WithLabelValues(strconv.Itoa(status)).Inc()
}
