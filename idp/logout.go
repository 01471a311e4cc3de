package idp

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a client
// sends the browser to the end-session endpoint, optionally with an ID token
// it was issued (id_token_hint), its client_id, a post_logout_redirect_uri it
// registered and a state to get back. The package web serves the endpoint;
// this file validates requests and decides nothing about pages.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/store"
)

// hintLeeway is how far past its exp an id_token_hint is still accepted: in
// effect without limit, as the specification allows (§2: an expired ID token
// is a good hint; the RP typically holds an old one). A hint's age is bounded
// by the key set instead: once its key leaves the JWKS, it no longer
// verifies. A hint only ever proposes a logout; it grants nothing.
const hintLeeway = 10 * 365 * 24 * time.Hour

// maxLogoutState bounds the state echoed back to the client.
const maxLogoutState = 2048

// newHintVerifier verifies id_token_hint values: ID tokens (typ JWT, never an
// access token or a sealed login request) signed by a key this provider
// publishes, with its issuer, whatever their exp.
func (p *Provider) newHintVerifier() (err error) {
	cfg := jwks.Config{Issuer: p.cfg.Issuer, ExpectedType: IDTokenType, Leeway: hintLeeway, Now: p.now, Logger: p.log,
		Algorithms: p.signingAlgorithms()}
	if p.hints, err = jwks.NewLocalVerifier(p.cfg.Signer.KeySet, cfg); err != nil {
		return fmt.Errorf("idp: id_token_hint verifier: %w", err)
	}
	return nil
}

// LogoutRequest is a validated RP-initiated logout request. Its
// PostLogoutRedirectURI, when set, is one ClientID registered, character for
// character.
type LogoutRequest struct {
	ClientID              string // from client_id or the hint's aud; "" when neither names one
	ClientName            string // for the confirmation page
	PostLogoutRedirectURI string
	State                 string
	// HintSubject is the sub of a verified id_token_hint issued to ClientID;
	// "" when there was none, or it did not verify (a forged or foreign
	// hint is ignored, never an error: it earns a confirmation page).
	HintSubject string
}

// LogoutError is a refused logout request, shown to the user: nothing about
// it may be sent to a URI that could not be checked.
type LogoutError struct{ Description string }

func (e *LogoutError) Error() string { return "invalid logout request: " + e.Description }

func badLogout(f string, a ...any) *LogoutError {
	return &LogoutError{Description: fmt.Sprintf(f, a...)}
}

// Silent reports whether the session may be ended without asking the user:
// the request carries a verified hint for the session's user. Anything else
// (no hint, a forged one, another user's) is confirmed by the user first, so
// that a link elsewhere cannot log anyone out.
func (lr *LogoutRequest) Silent(s *Session) bool {
	return lr != nil && s != nil && lr.HintSubject != "" && lr.HintSubject == s.UserID
}

// RedirectURL is where to send the browser once logged out: the registered
// post_logout_redirect_uri with state, or "" for none (Keygate shows its own
// page). Nil-safe.
func (lr *LogoutRequest) RedirectURL() string {
	if lr == nil || lr.PostLogoutRedirectURI == "" {
		return ""
	}
	if lr.State == "" {
		return lr.PostLogoutRedirectURI
	}
	return withQuery(lr.PostLogoutRedirectURI, url.Values{"state": {lr.State}})
}

// Values is the request as the confirmation form carries it: the client
// (resolved from the hint, if that is how it was named), the redirect URI and
// state; never the hint. ParseLogout validates them again when they come back.
func (lr *LogoutRequest) Values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"client_id": lr.ClientID, "post_logout_redirect_uri": lr.PostLogoutRedirectURI, "state": lr.State} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// ParseLogout validates the parameters of an end-session request
// (id_token_hint, client_id, post_logout_redirect_uri, state; ui_locales and
// anything else are ignored). It returns a *LogoutError for a request to
// refuse: a repeated parameter, an unknown client, a client_id the hint was
// not issued to, a post_logout_redirect_uri the client did not register or
// with no client to check it against. Any other error is Keygate's own.
func (p *Provider) ParseLogout(ctx context.Context, params url.Values) (*LogoutRequest, error) {
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if len(params[k]) > 1 {
			return nil, badLogout("the %s parameter is repeated", k)
		}
	}
	lr := &LogoutRequest{ClientID: params.Get("client_id"), PostLogoutRedirectURI: params.Get("post_logout_redirect_uri"),
		State: params.Get("state")}
	if len(lr.State) > maxLogoutState {
		return nil, badLogout("state is longer than %d bytes", maxLogoutState)
	}
	if err := p.applyHint(ctx, lr, params.Get("id_token_hint")); err != nil {
		return nil, err
	}
	if err := p.logoutClient(ctx, lr); err != nil {
		return nil, err
	}
	return lr, nil
}

// applyHint verifies the id_token_hint, if any, and takes its subject and
// client. A hint that does not verify (forged, from another issuer, signed
// by a key no longer published, not an ID token) is ignored. A verified one
// issued to another client than client_id is refused (§2: the OP MUST check
// they agree).
func (p *Provider) applyHint(ctx context.Context, lr *LogoutRequest, hint string) error {
	if hint == "" {
		return nil
	}
	if len(hint) > maxTokenBytes {
		p.log.Debug("id_token_hint ignored", "reason", "too long")
		return nil
	}
	c, err := p.hints.Verify(ctx, hint)
	if err != nil {
		p.log.Debug("id_token_hint ignored", "reason", err)
		return nil
	}
	if c.Subject == "" || len(c.Audience) == 0 {
		p.log.Debug("id_token_hint ignored", "reason", "no sub or aud")
		return nil
	}
	switch {
	case lr.ClientID == "" && len(c.Audience) == 1:
		lr.ClientID = c.Audience[0]
	case lr.ClientID == "":
		return badLogout("the id_token_hint has several audiences: send client_id too")
	case !slices.Contains(c.Audience, lr.ClientID):
		return badLogout("the id_token_hint was not issued to client %q", lr.ClientID)
	}
	lr.HintSubject = c.Subject
	return nil
}

// logoutClient looks up the request's client, if it names one, and checks
// the post_logout_redirect_uri against it.
func (p *Provider) logoutClient(ctx context.Context, lr *LogoutRequest) error {
	if lr.ClientID == "" {
		if lr.PostLogoutRedirectURI != "" {
			return badLogout("post_logout_redirect_uri needs client_id or a valid id_token_hint to be checked against")
		}
		return nil
	}
	c, err := p.dir.Client(ctx, lr.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return badLogout("unknown client %q", lr.ClientID)
	}
	if err != nil {
		return err
	}
	lr.ClientName = c.Name
	if lr.ClientName == "" {
		lr.ClientName = c.ID
	}
	if lr.PostLogoutRedirectURI != "" && !slices.Contains(c.PostLogoutRedirectURIs, lr.PostLogoutRedirectURI) {
		return badLogout("post_logout_redirect_uri %q is not registered for client %q", lr.PostLogoutRedirectURI, lr.ClientID)
	}
	return nil
}

// checkPostLogoutRedirectURIs validates post_logout_redirect_uris exactly as
// redirect_uris are (absolute, no fragment, a host for http(s), no
// whitespace); none are required.
func checkPostLogoutRedirectURIs(c *Client, l ClientLimits) error {
	err := checkRedirectURIs(&Client{RedirectURIs: c.PostLogoutRedirectURIs, Public: c.Public}, l)
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Field = "post_logout_redirect_uris"
	}
	return err
}
