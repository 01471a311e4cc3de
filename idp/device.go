package idp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/keygate/keygate/store"
)

// The device authorization grant (RFC 8628) for command-line tools and
// devices without a browser: the device asks POST /device/code for a device
// code and a short user code, shows the user code and the verification URI,
// and polls the token endpoint with the device code while its user, logged
// in on another screen, enters the user code at /device and approves or
// denies. Neither code is stored, only their digests.

// GrantDeviceCode is the device authorization grant's grant_type.
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// Device authorization settings.
const (
	DeviceCodeTTL  = 10 * time.Minute // how long a device has to get approved
	DeviceInterval = 5 * time.Second  // the minimum time between polls at first
	// deviceSlowDown is what a poll that came too early adds to the
	// interval (RFC 8628 §3.5).
	deviceSlowDown = 5 * time.Second
)

// userCodeAlphabet is RFC 8628 §6.1's: consonants only, no vowels (no words
// spelled by accident) and none easily confused. Eight of them are
// 20^8 ≈ 2^34.6 codes; with guesses throttled per session and per address
// (DeviceRequest) and codes living ten minutes, guessing a live one is out
// of reach.
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// userCodeLen is the number of characters of a user code, shown XXXX-XXXX.
const userCodeLen = 8

// DeviceAuthorization is the answer of the device authorization endpoint
// (RFC 8628 §3.2).
type DeviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// DeviceEndpoint is the URL of the device authorization endpoint.
func (p *Provider) DeviceEndpoint() string { return p.cfg.Issuer + "/device/code" }

// VerificationURI is the page where users enter user codes.
func (p *Provider) VerificationURI() string { return p.cfg.Issuer + "/device" }

// AuthorizeDevice serves POST /device/code: the client authenticates as at
// the token endpoint (a public client by its client_id), must be allowed
// the device grant, and gets a new device code for the scope it asks for.
func (p *Provider) AuthorizeDevice(ctx context.Context, r *Request) (*DeviceAuthorization, error) {
	c, err := p.AuthenticateClient(ctx, r, true)
	if err != nil {
		return nil, err
	}
	if !c.HasGrant(GrantDeviceCode) {
		return nil, unauthorizedClient("client %q may not use the %s grant", c.ID, GrantDeviceCode)
	}
	scope, err := grantScope(c, r.get("scope"))
	if err != nil {
		return nil, err
	}
	now := p.now().UTC()
	for range 3 { // a user code already taken: draw again
		deviceCode, userCode, err := newDeviceCodes()
		if err != nil {
			return nil, serverError(err)
		}
		d := store.DeviceCode{ID: digest(deviceCode), UserCode: digest(userCode), ClientID: c.ID, Scope: scope,
			Status: store.DevicePending, Interval: DeviceInterval, CreatedAt: now, ExpiresAt: now.Add(DeviceCodeTTL)}
		err = p.cfg.Store.CreateDeviceCode(ctx, d)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, serverError(err)
		}
		shown := FormatUserCode(userCode)
		return &DeviceAuthorization{DeviceCode: deviceCode, UserCode: shown, VerificationURI: p.VerificationURI(),
			VerificationURIComplete: p.VerificationURI() + "?user_code=" + shown,
			ExpiresIn:               int64(DeviceCodeTTL / time.Second), Interval: int64(DeviceInterval / time.Second)}, nil
	}
	return nil, serverError(errors.New("could not draw a free user code"))
}

// newDeviceCodes draws a 256-bit device code and a user code.
func newDeviceCodes() (deviceCode, userCode string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate device code: %w", err)
	}
	var sb strings.Builder
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for range userCodeLen {
		i, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", "", fmt.Errorf("generate user code: %w", err)
		}
		sb.WriteByte(userCodeAlphabet[i.Int64()])
	}
	return "kgd_" + base64.RawURLEncoding.EncodeToString(b), sb.String(), nil
}

// NormalizeUserCode is the form of a user code that is stored (digested)
// and compared: upper case, with anything but the alphabet's letters (the
// dash, spaces) dropped. It is "" when what is left is not a user code.
func NormalizeUserCode(s string) string {
	if len(s) > 64 {
		return ""
	}
	var sb strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case strings.ContainsRune(userCodeAlphabet, r):
			sb.WriteRune(r)
		case r == '-' || r == ' ':
		default:
			return ""
		}
	}
	if sb.Len() != userCodeLen {
		return ""
	}
	return sb.String()
}

// FormatUserCode shows a normalized user code as XXXX-XXXX.
func FormatUserCode(code string) string {
	if len(code) != userCodeLen {
		return code
	}
	return code[:userCodeLen/2] + "-" + code[userCodeLen/2:]
}

// ErrUnknownUserCode is the one answer to a user code that names no pending
// device authorization: mistyped, expired, already decided, or made up.
var ErrUnknownUserCode = errors.New("unknown or expired code")

// DeviceRequest is a pending device authorization as the verification page
// shows it to the user who entered its code.
type DeviceRequest struct {
	id         string
	UserCode   string // XXXX-XXXX
	ClientID   string
	ClientName string
	Scopes     []string
	ExpiresAt  time.Time
}

// LookupUserCode finds the pending device authorization a logged-in user's
// code names. Every lookup first reserves an attempt from the session's
// bucket (the user throttle) and from the address's (the IP throttle), as a
// password attempt does (CheckPassword), so N concurrent guesses are looked
// up at most burst times; a miss keeps both, a hit gives them back. So a
// short code cannot be brute-forced: guessing is bounded by the throttles'
// refill rates, while codes live DeviceCodeTTL. A refusal is a
// ThrottledError, a miss ErrUnknownUserCode.
func (p *Provider) LookupUserCode(ctx context.Context, sess *Session, code, ip string) (*DeviceRequest, error) {
	now := p.now()
	sessKey, ipKey := throttleKey("device-session", sess.ID), addressKey("device-ip", ip)
	if err := p.reserveLogin(ctx, sessKey, ipKey, now); err != nil {
		return nil, err
	}
	norm := NormalizeUserCode(code)
	if norm == "" {
		return nil, ErrUnknownUserCode
	}
	d, err := p.cfg.Store.GetDeviceCodeByUserCode(ctx, digest(norm))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownUserCode
	}
	if err != nil {
		return nil, err
	}
	if d.Status != store.DevicePending || !now.Before(d.ExpiresAt) {
		return nil, ErrUnknownUserCode
	}
	c, err := p.dir.Client(ctx, d.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownUserCode // the client was deleted since
	}
	if err != nil {
		return nil, err
	}
	for _, release := range []struct {
		t   store.Throttle
		key string
	}{{p.cfg.UserThrottle, sessKey}, {p.cfg.IPThrottle, ipKey}} {
		if err := release.t.Release(ctx, release.key, now); err != nil {
			p.log.Warn("device code throttle release failed", "err", err)
		}
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	return &DeviceRequest{id: d.ID, UserCode: FormatUserCode(norm), ClientID: c.ID, ClientName: name,
		Scopes: strings.Fields(d.Scope), ExpiresAt: d.ExpiresAt}, nil
}

// DecideDevice records the logged-in user's approval (or denial) of the
// device authorization whose code they entered: looked up again, through
// the same throttles, so that deciding is no guessing oracle either. A code
// decided meanwhile is ErrUnknownUserCode.
func (p *Provider) DecideDevice(ctx context.Context, sess *Session, code, ip string, approve bool) (*DeviceRequest, error) {
	dr, err := p.LookupUserCode(ctx, sess, code, ip)
	if err != nil {
		return nil, err
	}
	_, err = p.cfg.Store.DecideDeviceCode(ctx, dr.id, approve, sess.User.ID, sess.AuthTime, MethodsOf(sess.AMR), p.now().UTC())
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownUserCode
	}
	if err != nil {
		return nil, err
	}
	p.log.Info("device authorization decided", "client_id", dr.ClientID, "user_id", sess.User.ID, "approved", approve)
	return dr, nil
}
