package idp_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/idp"
)

// newDeviceEnv is a grantEnv with device clients:
//
//	tv     public; device_code, refresh_token; openid profile read
//	box    secret; device_code only; read
func newDeviceEnv(t *testing.T) *grantEnv {
	t.Helper()
	cfg, clock := grantConfig(t)
	cfg.Clients = append(cfg.Clients,
		idp.Client{ID: "tv", Name: "Living-room TV", Public: true, GrantTypes: []string{idp.GrantDeviceCode, idp.GrantRefreshToken},
			Scopes: []string{"openid", "profile", "read"}},
		idp.Client{ID: "box", SecretHash: idp.HashSecret(gtSecret), GrantTypes: []string{idp.GrantDeviceCode}, Scopes: []string{"read"}})
	return grantEnvFor(t, cfg, clock)
}

// authorizeDevice starts a device authorization for a public client.
func (e *grantEnv) authorizeDevice(t *testing.T, client, scope string) *idp.DeviceAuthorization {
	t.Helper()
	da, err := e.p.AuthorizeDevice(context.Background(), &idp.Request{Form: url.Values{"client_id": {client}, "scope": {scope}}})
	if err != nil {
		t.Fatal(err)
	}
	return da
}

// decide has alice enter the user code and approve or deny.
func (e *grantEnv) decide(t *testing.T, userCode string, approve bool) {
	t.Helper()
	ctx := context.Background()
	_, s, err := e.p.StartSession(ctx, e.alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.DecideDevice(ctx, s, userCode, "192.0.2.7", approve); err != nil {
		t.Fatalf("DecideDevice: %v", err)
	}
}

func (e *grantEnv) pollDevice(client, deviceCode string) (*idp.TokenResponse, error) {
	return e.token("", "", url.Values{"grant_type": {idp.GrantDeviceCode}, "client_id": {client}, "device_code": {deviceCode}})
}

func TestDeviceAuthorization(t *testing.T) {
	e := newDeviceEnv(t)
	da := e.authorizeDevice(t, "tv", "openid profile")
	if !strings.HasPrefix(da.DeviceCode, "kgd_") || da.ExpiresIn != 600 || da.Interval != 5 ||
		da.VerificationURI != gtIssuer+"/device" || da.VerificationURIComplete != gtIssuer+"/device?user_code="+da.UserCode {
		t.Errorf("device authorization %+v", da)
	}
	if len(da.UserCode) != 9 || da.UserCode[4] != '-' || strings.Trim(da.UserCode, "BCDFGHJKLMNPQRSTVWXZ-") != "" {
		t.Errorf("user code %q, want XXXX-XXXX of consonants", da.UserCode)
	}
	for _, c := range []struct {
		name, client, secret, scope, code string
	}{
		{"a client without the grant", "spa", "", "", "unauthorized_client"},
		{"a scope the client may not have", "tv", "", "write", "invalid_scope"},
		{"a confidential client without its secret", "box", "", "", "invalid_client"},
		{"an unknown client", "nobody", "", "", "invalid_client"},
	} {
		form := url.Values{"client_id": {c.client}, "scope": {c.scope}}
		_, err := e.p.AuthorizeDevice(context.Background(), &idp.Request{Form: form})
		wantError(t, c.name, err, c.code, "")
	}
	box, err := e.p.AuthorizeDevice(context.Background(), &idp.Request{Form: url.Values{}, HasBasic: true, BasicUser: "box", BasicPass: gtSecret})
	if err != nil || box.DeviceCode == "" {
		t.Errorf("confidential client: %+v, %v", box, err)
	}
}

// TestDeviceCodeGrant drives the grant's answers, one sequence of polls
// per case.
func TestDeviceCodeGrant(t *testing.T) {
	type poll struct {
		wait time.Duration // clock advance before the poll
		code string        // expected error; "" for tokens
	}
	cases := []struct {
		name   string
		decide string // "", "approve" or "deny", before the polls
		client string // polling client; "tv" when empty
		garble bool   // poll with an unknown device code
		polls  []poll
	}{
		{name: "pending", polls: []poll{{0, "authorization_pending"}, {5 * time.Second, "authorization_pending"}}},
		{name: "slow_down", polls: []poll{{0, "authorization_pending"}, {2 * time.Second, "slow_down"},
			{6 * time.Second, "slow_down"},                // the interval was 10 s, now 15 s
			{15 * time.Second, "authorization_pending"}}}, // at the interval: on time
		{name: "expired", polls: []poll{{idp.DeviceCodeTTL, "expired_token"}}},
		{name: "expired after approval", decide: "approve", polls: []poll{{idp.DeviceCodeTTL, "expired_token"}}},
		{name: "denied", decide: "deny", polls: []poll{{0, "access_denied"}, {5 * time.Second, "access_denied"}}},
		{name: "approved, then reused", decide: "approve", polls: []poll{{0, ""}, {5 * time.Second, "invalid_grant"}}},
		{name: "approved, polled early", decide: "approve", polls: []poll{{0, ""}}},
		{name: "another client", client: "box", polls: []poll{{0, "invalid_grant"}}},
		{name: "unknown code", garble: true, polls: []poll{{0, "invalid_grant"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newDeviceEnv(t)
			da := e.authorizeDevice(t, "tv", "openid profile read")
			if c.decide != "" {
				e.decide(t, da.UserCode, c.decide == "approve")
			}
			client, code := "tv", da.DeviceCode
			if c.garble {
				code += "x"
			}
			for i, p := range c.polls {
				e.clock.Advance(p.wait)
				var res *idp.TokenResponse
				var err error
				if c.client == "box" {
					res, err = e.token("box", gtSecret, url.Values{"grant_type": {idp.GrantDeviceCode}, "device_code": {code}})
				} else {
					res, err = e.pollDevice(client, code)
				}
				if got, _ := oauthError(err); got != p.code {
					t.Fatalf("poll %d: error %q (%v), want %q", i, got, err, p.code)
				}
				if p.code == "" {
					checkDeviceTokens(t, e, res)
				}
			}
		})
	}
}

func checkDeviceTokens(t *testing.T, e *grantEnv, res *idp.TokenResponse) {
	t.Helper()
	if res.AccessToken == "" || res.IDToken == "" || res.RefreshToken == "" || res.Scope != "openid profile read" {
		t.Fatalf("tokens %+v: want access, ID and refresh tokens for openid profile read", res)
	}
	claims, err := e.p.ValidateAccessToken(context.Background(), res.AccessToken)
	if err != nil || claims.Subject != e.alice.ID || claims.ClientID != "tv" || claims.Username != "alice" || claims.AuthTime == 0 {
		t.Errorf("access token claims %+v, %v", claims, err)
	}
}

// TestDeviceNoOpenID: without openid there is no ID token, and a client
// without refresh_token gets no refresh token.
func TestDeviceNoOpenID(t *testing.T) {
	e := newDeviceEnv(t)
	ctx := context.Background()
	da, err := e.p.AuthorizeDevice(ctx, &idp.Request{Form: url.Values{}, HasBasic: true, BasicUser: "box", BasicPass: gtSecret})
	if err != nil {
		t.Fatal(err)
	}
	e.decide(t, da.UserCode, true)
	res, err := e.token("box", gtSecret, url.Values{"grant_type": {idp.GrantDeviceCode}, "device_code": {da.DeviceCode}})
	if err != nil || res.AccessToken == "" || res.IDToken != "" || res.RefreshToken != "" || res.Scope != "read" {
		t.Errorf("tokens %+v, %v: want an access token only, for read", res, err)
	}
}

// TestDeviceConcurrentPolls: of many polls of one approved code at once,
// exactly one gets tokens.
func TestDeviceConcurrentPolls(t *testing.T) {
	e := newDeviceEnv(t)
	da := e.authorizeDevice(t, "tv", "read")
	e.decide(t, da.UserCode, true)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = e.pollDevice("tv", da.DeviceCode) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if code, _ := oauthError(err); code != "invalid_grant" {
			t.Errorf("a losing poll: %v, want invalid_grant", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d polls got tokens, want exactly 1", ok)
	}
}

// TestUserCodeGuessing: wrong user codes use up the session's attempts
// (the user throttle's burst, 3 here), after which even the right code is
// refused until the bucket refills; a right code costs nothing.
func TestUserCodeGuessing(t *testing.T) {
	e := newDeviceEnv(t)
	ctx := context.Background()
	da := e.authorizeDevice(t, "tv", "openid")
	_, s, err := e.p.StartSession(ctx, e.alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // hits are free
		dr, err := e.p.LookupUserCode(ctx, s, strings.ToLower(strings.ReplaceAll(da.UserCode, "-", " ")), "192.0.2.7")
		if err != nil || dr.ClientName != "Living-room TV" || dr.UserCode != da.UserCode || strings.Join(dr.Scopes, " ") != "openid" {
			t.Fatalf("LookupUserCode = %+v, %v", dr, err)
		}
	}
	for i, guess := range []string{"BBBB-BBBB", "not a code", "CCCC-CCCC"} {
		if _, err := e.p.LookupUserCode(ctx, s, guess, "192.0.2.7"); !errors.Is(err, idp.ErrUnknownUserCode) {
			t.Fatalf("guess %d: %v, want ErrUnknownUserCode", i, err)
		}
	}
	var te *idp.ThrottledError
	if _, err := e.p.DecideDevice(ctx, s, da.UserCode, "192.0.2.7", true); !errors.As(err, &te) {
		t.Fatalf("after 3 misses: %v, want a ThrottledError", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.p.DecideDevice(ctx, s, da.UserCode, "192.0.2.7", true); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
	if _, err := e.p.DecideDevice(ctx, s, da.UserCode, "192.0.2.7", false); !errors.Is(err, idp.ErrUnknownUserCode) {
		t.Errorf("deciding twice: %v, want ErrUnknownUserCode", err)
	}
}
