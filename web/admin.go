package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
)

// digest hashes a secret so comparisons run in constant time over a fixed
// length, leaking neither content nor length.
func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// AdminScope is the scope an access token needs, besides an admin user as its
// subject, to use /admin.
const AdminScope = "admin"

// requireAdmin guards /admin. It accepts an access token whose subject is an
// admin user and which carries the admin scope, or the bootstrap secret
// (admin.token / KEYGATE_ADMIN_TOKEN), kept as a fallback for a first start
// before any admin user exists and for automation; leave it unset otherwise.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		auth := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, tok, ok := strings.Cut(auth, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !(strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "DPoP")) || tok == "" {
			return s.noToken(c, adminRealm, "admin access token required (Bearer, or DPoP with a proof)")
		}
		if s.cfg.AdminToken != "" && strings.EqualFold(scheme, "Bearer") {
			got := digest(tok)
			if subtle.ConstantTimeCompare(got[:], s.adminKey[:]) == 1 {
				c.Set(auditActorKey, ActorBootstrapToken)
				return next(c)
			}
		}
		claims, err := s.accessClaims(c, adminRealm)
		if err != nil {
			return err
		}
		insufficient := s.tokenChallenge(c, adminRealm)
		insufficient.Error, insufficient.Scope = "insufficient_scope", AdminScope
		if claims.ForClient() { // a client's own token never passes for a user
			return insufficient.deny(c, http.StatusForbidden, "admin access requires an admin user's token, not a client's")
		}
		u, err := s.dir.User(c.Request().Context(), claims.Subject)
		if err != nil || !u.Admin || u.Disabled() || !claims.HasScope(AdminScope) {
			return insufficient.deny(c, http.StatusForbidden, "admin access requires an admin user's token with the admin scope")
		}
		c.Set(auditActorKey, u.ID)
		return next(c)
	}
}

// KeyView is one key as the admin API shows it.
type KeyView = rotation.KeyView

func (s *Server) adminListKeys(c echo.Context) error {
	snap := s.cfg.Keys.Current()
	if snap == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "key set not loaded yet")
	}
	return c.JSON(http.StatusOK, map[string]any{"keys": rotation.ViewKeys(snap.Keys), "version": snap.Version})
}

// adminRotate rotates now, or schedules the rotation if the next key is younger
// than publish_ahead; ?force=true rotates now regardless.
func (s *Server) adminRotate(c echo.Context) error {
	force := false
	if v := c.QueryParam("force"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "force must be true or false")
		}
		force = b
	}
	res, err := s.cfg.Keys.Rotate(c.Request().Context(), force)
	if err != nil {
		return err
	}
	auditDetails(c, "activated", res.Activated, "scheduled", res.Scheduled, "force", force)
	return c.JSON(http.StatusOK, map[string]any{"activated": res.Activated, "retired": res.Retired,
		"at": res.At.UTC(), "scheduled": res.Scheduled})
}

func (s *Server) adminRevoke(c echo.Context) error {
	kid := c.Param("kid")
	res, err := s.cfg.Keys.Revoke(c.Request().Context(), kid)
	switch {
	case errors.Is(err, rotation.ErrUnknownKID):
		return echo.NewHTTPError(http.StatusNotFound, "no key with kid "+strconv.Quote(kid))
	case errors.Is(err, rotation.ErrAlreadyRevoked):
		return echo.NewHTTPError(http.StatusConflict, "key "+strconv.Quote(kid)+" is already revoked")
	case err != nil:
		return err
	}
	auditDetails(c, "was", string(res.WasState), "activated", res.Activated)
	return c.JSON(http.StatusOK, map[string]any{"revoked": res.KID, "was": string(res.WasState), "activated": res.Activated})
}

// adminManageRoutes adds the client and user management API to the /admin
// group (requireAdmin). Answers are JSON; errors are {"error": ...} with 400
// (bad input), 404 (unknown id) or 409 (a static client, a taken email, the
// last enabled admin).
// Secret hashes are never shown.
func (s *Server) adminManageRoutes(admin *echo.Group) {
	admin.GET("/clients", s.adminListClients)
	admin.GET("/clients/:id", s.adminGetClient)
	admin.PATCH("/clients/:id", s.adminPatchClient)
	admin.POST("/clients/:id/rotate-secret", s.adminRotateSecret)
	admin.GET("/users", s.adminListUsers)
	admin.PATCH("/users/:login", s.adminPatchUser)
	admin.POST("/users/:login/reset-mfa", s.adminResetMFA)
}

// AdminClientView is a client as the admin API shows it: effective values, and
// whether it has a secret, never the secret's hash.
type AdminClientView struct {
	ID                      string     `json:"id"`
	Name                    string     `json:"name"`
	Source                  string     `json:"source"` // "config" or "store"
	Public                  bool       `json:"public"`
	HasSecret               bool       `json:"has_secret"`
	HasKeys                 bool       `json:"has_keys"`
	JWKSURI                 string     `json:"jwks_uri,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"` // while a rotated-out secret still works
	GrantTypes              []string   `json:"grant_types"`
	Scopes                  []string   `json:"scopes"`
	Audience                []string   `json:"audience"`
	AudienceDefault         bool       `json:"audience_default"`
	RedirectURIs            []string   `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string   `json:"post_logout_redirect_uris"`
	AllowedOrigins          []string   `json:"allowed_origins"` // as registered; none: the redirect URIs' origins
	Origins                 []string   `json:"origins"`         // the effective CORS origins
	AccessTTL               string     `json:"access_ttl"`
	AccessTTLDefault        bool       `json:"access_ttl_default"`
	NotBeforeDelay          string     `json:"not_before_delay"`
	Introspect              bool       `json:"introspect"`
	ThirdParty              bool       `json:"third_party"`
	SigningAlg              string     `json:"signing_alg"` // RS256 unless registered with ES256 or EdDSA
	AllowBareAssertion      bool       `json:"allow_bare_assertion"`
	DPoPBoundAccessTokens   bool       `json:"dpop_bound_access_tokens"`
	CreatedAt               *time.Time `json:"created_at,omitempty"`
}

func (s *Server) clientView(c *idp.Client) AdminClientView {
	ttl, ttlDef := s.dir.EffectiveAccessTTL(c)
	aud, audDef := c.EffectiveAudience()
	v := AdminClientView{ID: c.ID, Name: c.Name, Source: "store", Public: c.Public, HasSecret: len(c.SecretHash) > 0,
		HasKeys: c.HasKeys(), JWKSURI: c.JWKSURI, GrantTypes: nonNil(c.GrantTypes), Scopes: nonNil(c.Scopes),
		Audience: aud, AudienceDefault: audDef, RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		AllowedOrigins: nonNil(c.AllowedOrigins), Origins: nonNil(c.Origins()), AccessTTL: ttl.String(),
		AccessTTLDefault: ttlDef, NotBeforeDelay: c.NotBeforeDelay.String(), Introspect: c.Introspect,
		AllowBareAssertion: c.AllowBareAssertion, ThirdParty: c.ThirdParty, DPoPBoundAccessTokens: c.DPoPBoundAccessTokens,
		SigningAlg: c.EffectiveSigningAlg()}
	if c.Static {
		v.Source = "config"
	}
	if until, ok := s.dir.SecretGraceActive(c); ok {
		v.PreviousSecretExpiresAt = &until
	}
	if !c.CreatedAt.IsZero() {
		at := c.CreatedAt.UTC()
		v.CreatedAt = &at
	}
	return v
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// AdminUserView is a user as the admin API shows it, without the password
// hash; SecondFactor is read-only (reset it with POST .../reset-mfa).
type AdminUserView struct {
	ID         string     `json:"id"`
	Username   string     `json:"username"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Admin      bool       `json:"admin"`
	Disabled   bool       `json:"disabled"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`

	SecondFactor idp.SecondFactorState `json:"second_factor"`
}

func (s *Server) userView(ctx context.Context, u store.User) (AdminUserView, error) {
	sf, err := s.dir.SecondFactorState(ctx, u.ID)
	if err != nil {
		return AdminUserView{}, err
	}
	return adminUserView(u, sf), nil
}

// adminUserView is u as the admin API shows it, with its second-factor state.
func adminUserView(u store.User, sf idp.SecondFactorState) AdminUserView {
	v := AdminUserView{SecondFactor: sf, ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, Admin: u.Admin, Disabled: u.Disabled(),
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
	if u.Disabled() {
		at := u.DisabledAt.UTC()
		v.DisabledAt = &at
	}
	return v
}

// manageError maps the management operations' errors to answers.
func manageError(err error) error {
	var ve *idp.ValidationError
	switch {
	case errors.As(err, &ve):
		return echo.NewHTTPError(http.StatusBadRequest, ve.Error())
	case errors.Is(err, store.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "not found")
	case errors.Is(err, idp.ErrStaticClient), errors.Is(err, idp.ErrUserExists), errors.Is(err, idp.ErrLastAdmin):
		return echo.NewHTTPError(http.StatusConflict, err.Error())
	}
	return err
}

// decodeJSON reads a JSON object into v, refusing unknown fields and
// trailing data.
func decodeJSON(c echo.Context, v any) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: trailing data")
	}
	return nil
}

func (s *Server) adminListClients(c echo.Context) error {
	cs, err := s.dir.Clients(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]AdminClientView, 0, len(cs))
	for _, cl := range cs {
		out = append(out, s.clientView(cl))
	}
	return c.JSON(http.StatusOK, map[string]any{"clients": out})
}

func (s *Server) adminGetClient(c echo.Context) error {
	cl, err := s.dir.Client(c.Request().Context(), c.Param("id"))
	if err != nil {
		return manageError(err)
	}
	return c.JSON(http.StatusOK, s.clientView(cl))
}

// clientPatchBody is PATCH /admin/clients/{id}: fields left out stay as they
// are; durations are Go durations ("15m", "0s" for the default).
type clientPatchBody struct {
	Name           *string   `json:"name"`
	GrantTypes     *[]string `json:"grant_types"`
	Scopes         *[]string `json:"scopes"`
	Audience       *[]string `json:"audience"`
	RedirectURIs   *[]string `json:"redirect_uris"`
	AllowedOrigins *[]string `json:"allowed_origins"`
	AccessTTL      *string   `json:"access_ttl"`
	NotBeforeDelay *string   `json:"not_before_delay"`
	Introspect     *bool     `json:"introspect"`
	ThirdParty     *bool     `json:"third_party"`
	// DPoPBoundAccessTokens: require a DPoP proof on its token requests.
	DPoPBoundAccessTokens  *bool     `json:"dpop_bound_access_tokens"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris"`
	AllowBareAssertion     *bool     `json:"allow_bare_assertion"`
	SigningAlg             *string   `json:"signing_alg"`
}

func parseDurationField(name string, v *string) (*time.Duration, error) {
	if v == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(*v)
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("%s: %q is not a duration such as \"15m\"", name, *v))
	}
	return &d, nil
}

func (s *Server) adminPatchClient(c echo.Context) error {
	var b clientPatchBody
	if err := decodeJSON(c, &b); err != nil {
		return err
	}
	pt := idp.ClientPatch{Name: b.Name, GrantTypes: b.GrantTypes, Scopes: b.Scopes, Audience: b.Audience,
		RedirectURIs: b.RedirectURIs, AllowedOrigins: b.AllowedOrigins, Introspect: b.Introspect, ThirdParty: b.ThirdParty,
		DPoPBoundAccessTokens: b.DPoPBoundAccessTokens, PostLogoutRedirectURIs: b.PostLogoutRedirectURIs,
		AllowBareAssertion: b.AllowBareAssertion, SigningAlg: b.SigningAlg}
	var err error
	if pt.AccessTTL, err = parseDurationField("access_ttl", b.AccessTTL); err != nil {
		return err
	}
	if pt.NotBeforeDelay, err = parseDurationField("not_before_delay", b.NotBeforeDelay); err != nil {
		return err
	}
	auditDetails(c, "fields", givenFields(b))
	cl, err := s.dir.UpdateClient(c.Request().Context(), c.Param("id"), pt)
	if err != nil {
		return manageError(err)
	}
	return c.JSON(http.StatusOK, s.clientView(cl))
}

// adminRotateSecret is POST /admin/clients/{id}/rotate-secret with an
// optional {"grace": "24h"} (default idp.DefaultSecretGrace; "0s" revokes the
// old secret at once). The new secret is in this answer only.
func (s *Server) adminRotateSecret(c echo.Context) error {
	var b struct {
		Grace *string `json:"grace"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &b); err != nil {
			return err
		}
	}
	grace := idp.DefaultSecretGrace
	if d, err := parseDurationField("grace", b.Grace); err != nil {
		return err
	} else if d != nil {
		grace = *d
	}
	secret, cl, err := s.dir.RotateClientSecret(c.Request().Context(), c.Param("id"), grace)
	if err != nil {
		return manageError(err)
	}
	auditDetails(c, "grace", grace.String())
	c.Response().Header().Set("Cache-Control", "no-store")
	out := map[string]any{"client_id": cl.ID, "client_secret": secret}
	if until, ok := s.dir.SecretGraceActive(cl); ok {
		out["previous_secret_expires_at"] = until
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) adminListUsers(c echo.Context) error {
	us, err := s.dir.Users(c.Request().Context())
	if err != nil {
		return err
	}
	sfs, err := s.dir.SecondFactorStates(c.Request().Context()) // two reads for all users, not two per user
	if err != nil {
		return err
	}
	out := make([]AdminUserView, 0, len(us))
	for _, u := range us {
		out = append(out, adminUserView(u, sfs[u.ID]))
	}
	return c.JSON(http.StatusOK, map[string]any{"users": out})
}

// adminResetMFA is POST /admin/users/{login}/reset-mfa: it removes the
// user's second factor (TOTP and recovery codes), as `keygate users
// reset-mfa` does, and answers {"user": ..., "removed": true|false}.
func (s *Server) adminResetMFA(c echo.Context) error {
	had, err := s.dir.ResetSecondFactor(c.Request().Context(), c.Param("login"))
	if err != nil {
		return manageError(err)
	}
	auditDetails(c, "removed", had)
	return c.JSON(http.StatusOK, map[string]any{"user": c.Param("login"), "removed": had})
}

// adminPatchUser is PATCH /admin/users/{login} (username or email) with any
// of email, name, admin and disabled. Disabling revokes the user's refresh
// tokens and ends their sessions; see idp.Directory.UpdateUser.
func (s *Server) adminPatchUser(c echo.Context) error {
	var b struct {
		Email    *string `json:"email"`
		Name     *string `json:"name"`
		Admin    *bool   `json:"admin"`
		Disabled *bool   `json:"disabled"`
	}
	if err := decodeJSON(c, &b); err != nil {
		return err
	}
	auditDetails(c, "fields", givenFields(b))
	u, err := s.dir.UpdateUser(c.Request().Context(), c.Param("login"),
		idp.UserPatch{Email: b.Email, Name: b.Name, Admin: b.Admin, Disabled: b.Disabled})
	if err != nil {
		return manageError(err)
	}
	auditDetails(c, "user_id", u.ID, "disabled", u.Disabled(), "admin", u.Admin)
	v, err := s.userView(c.Request().Context(), u)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
