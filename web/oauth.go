package web

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unsafe"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/store"
)

// formRequest reads an application/x-www-form-urlencoded POST body (never the
// query string: RFC 6749 §3.2 keeps credentials out of URLs) and HTTP Basic
// client credentials, which RFC 6749 §2.3.1 form-encodes before base64.
func (s *Server) formRequest(c echo.Context, endpoint string) (*idp.Request, error) {
	r := c.Request()
	if ct := r.Header.Get(echo.HeaderContentType); !strings.EqualFold(ct, echo.MIMEApplicationForm) { // the usual value, without parameters, needs no parsing
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationForm {
			return nil, &idp.Error{Code: "invalid_request", Status: http.StatusBadRequest,
				Description: "the body must be application/x-www-form-urlencoded"}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	// The form's strings share body's bytes, which nothing else holds or
	// changes: no copy of the body.
	form, err := url.ParseQuery(unsafe.String(unsafe.SliceData(body), len(body)))
	if err != nil {
		return nil, &idp.Error{Code: "invalid_request", Status: http.StatusBadRequest, Description: "the body is not valid form encoding"}
	}
	req := &idp.Request{Form: form, RemoteIP: c.RealIP(), Endpoint: s.endpointURL(endpoint), DPoP: r.Header.Values(headerDPoP)}
	if user, pass, ok := r.BasicAuth(); ok {
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, &idp.Error{Code: "invalid_client", Status: http.StatusUnauthorized, Description: "malformed Basic credentials"}
		}
		req.BasicUser, req.BasicPass, req.HasBasic = u, p, true
	} else if r.Header.Get(echo.HeaderAuthorization) != "" && !strings.HasPrefix(strings.ToLower(r.Header.Get(echo.HeaderAuthorization)), "bearer ") {
		return nil, &idp.Error{Code: "invalid_client", Status: http.StatusUnauthorized, Description: "unsupported Authorization scheme"}
	}
	return req, nil
}

// token serves POST /token; every answer is counted and every failure
// logged (observeToken).
func (s *Server) token(c echo.Context) error {
	req, err := s.formRequest(c, "/token")
	s.corsForClient(c, requestClientID(req))
	var res *idp.TokenResponse
	if err == nil {
		res, err = s.cfg.IDP.Token(c.Request().Context(), req)
	}
	s.observeToken(c, req, err)
	if n := s.cfg.IDP.DPoPNonce(); n != "" {
		c.Response().Header().Set(headerDPoPNonce, n) // RFC 9449 §8: on errors and successes alike
	}
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h["Cache-Control"] = noStore // canonical keys; shared values, which Header.Add would copy, not change
	h["Pragma"] = noCache
	h[echo.HeaderContentType] = jsonUTF8 // what c.JSON sets when none is
	return c.JSON(http.StatusOK, res)
}

var noStore, noCache, jsonUTF8 = []string{"no-store"}, []string{"no-cache"}, []string{echo.MIMEApplicationJSON}

// endpointURL is s.cfg.Issuer+path, built once for the form endpoints.
func (s *Server) endpointURL(path string) string {
	if u, ok := s.endpoints[path]; ok {
		return u
	}
	return s.cfg.Issuer + path
}

func (s *Server) revoke(c echo.Context) error {
	req, err := s.formRequest(c, "/revoke")
	s.corsForClient(c, requestClientID(req))
	if err == nil {
		var cl *idp.Client
		if cl, err = s.cfg.IDP.AuthenticateClient(c.Request().Context(), req, true); err == nil {
			err = s.cfg.IDP.Revoke(c.Request().Context(), cl, req.Form.Get("token"), req.Form.Get("token_type_hint"))
		}
	}
	if err != nil {
		s.oauthFailed(c, "/revoke", req, err)
		return err
	}
	return c.NoContent(http.StatusOK)
}

func (s *Server) introspect(c echo.Context) error {
	req, err := s.formRequest(c, "/introspect")
	var res map[string]any
	if err == nil {
		var cl *idp.Client
		if cl, err = s.cfg.IDP.AuthenticateClient(c.Request().Context(), req, false); err == nil {
			res, err = s.cfg.IDP.Introspect(c.Request().Context(), cl, req.Form.Get("token"))
		}
	}
	if err != nil {
		s.oauthFailed(c, "/introspect", req, err)
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, res)
}

// The DPoP headers (RFC 9449 §4.1, §8).
const (
	headerDPoP      = "DPoP"
	headerDPoPNonce = "DPoP-Nonce"
)

// authSchemeKey holds the scheme the request's access token came with,
// "Bearer" or "DPoP", for the challenges answered after bearer.
const authSchemeKey = "keygate.auth_scheme"

// tokenChallenge is the challenge of the scheme the request used (Bearer
// unless it presented a DPoP token), with DPoP's algs.
func (s *Server) tokenChallenge(c echo.Context, realm string) challenge {
	if c.Get(authSchemeKey) == "DPoP" {
		return challenge{Scheme: "DPoP", Realm: realm, Algs: strings.Join(s.cfg.IDP.DPoPAlgorithms(), " ")}
	}
	return challenge{Scheme: "Bearer", Realm: realm}
}

// requestToken is the access token of a request and its scheme: from the
// Authorization header (Bearer, JWT — the scheme Flask-JWT clients send for
// the same token — or DPoP), or on a form POST the access_token field.
func requestToken(c echo.Context) (scheme, token string) {
	r := c.Request()
	if sch, rest, ok := strings.Cut(r.Header.Get(echo.HeaderAuthorization), " "); ok {
		switch {
		case strings.EqualFold(sch, "Bearer") || strings.EqualFold(sch, "JWT"):
			return "Bearer", strings.TrimSpace(rest)
		case strings.EqualFold(sch, "DPoP"):
			return "DPoP", strings.TrimSpace(rest)
		}
	} else if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get(echo.HeaderContentType), echo.MIMEApplicationForm) {
		return "Bearer", c.FormValue("access_token")
	}
	return "Bearer", ""
}

// bearer answers RFC 6750 and RFC 9449 §7: the access token of the request,
// validated; a DPoP-bound token only with the DPoP scheme and a valid proof
// of its key, a bearer token only with Bearer. Otherwise a 401 with
// WWW-Authenticate in the scheme the request used (both when it sent none).
func (s *Server) bearer(c echo.Context) (*idp.AccessClaims, error) {
	return s.accessClaims(c, realm)
}

// accessClaims is bearer with the realm of the challenges.
func (s *Server) accessClaims(c echo.Context, realm string) (*idp.AccessClaims, error) {
	r := c.Request()
	scheme, tok := requestToken(c)
	c.Set(authSchemeKey, scheme)
	if tok == "" {
		return nil, s.noToken(c, realm, "an access token is required (Bearer, or DPoP with a proof)")
	}
	if n := s.cfg.IDP.DPoPNonce(); n != "" && scheme == "DPoP" {
		c.Response().Header().Set(headerDPoPNonce, n)
	}
	claims, err := s.cfg.IDP.ValidateAccessToken(r.Context(), tok)
	if err != nil {
		var te *idp.TokenError
		if errors.As(err, &te) {
			return nil, s.invalidToken(c, realm, te.Reason)
		}
		return nil, err
	}
	bound := claims.Confirmation != nil
	switch {
	case scheme == "Bearer" && bound:
		c.Set(authSchemeKey, "DPoP")
		return nil, s.invalidToken(c, realm, "the access token is DPoP-bound: present it with the DPoP scheme and a proof")
	case scheme == "DPoP" && !bound:
		return nil, s.invalidToken(c, realm, "the access token is not DPoP-bound: present it with the Bearer scheme")
	case scheme == "DPoP":
		err := s.cfg.IDP.CheckResourceProof(r.Context(), claims, tok, r.Header.Values(headerDPoP), r.Method, s.cfg.Issuer+r.URL.Path)
		var oe *idp.Error
		if errors.As(err, &oe) && (oe.Code == idp.ErrCodeInvalidDPoPProof || oe.Code == idp.ErrCodeUseDPoPNonce) {
			ch := s.tokenChallenge(c, realm)
			ch.Error, ch.Description = oe.Code, oe.Description
			return nil, ch.deny(c, http.StatusUnauthorized, oe.Description)
		}
		if err != nil {
			return nil, err
		}
	}
	return claims, nil
}

// noToken is the 401 answer to a request without an access token: RFC 9449
// §7.1, a resource accepting both schemes offers both challenges.
func (s *Server) noToken(c echo.Context, realm, msg string) error {
	c.Response().Header().Add(echo.HeaderWWWAuthenticate, challenge{Scheme: "Bearer", Realm: realm}.String())
	c.Set(authSchemeKey, "DPoP")
	return s.tokenChallenge(c, realm).add(c, http.StatusUnauthorized, msg)
}

// invalidToken is the 401 invalid_token answer in the request's scheme.
func (s *Server) invalidToken(c echo.Context, realm, reason string) error {
	ch := s.tokenChallenge(c, realm)
	ch.Error, ch.Description = "invalid_token", reason
	return ch.deny(c, http.StatusUnauthorized, reason)
}

// userBearer is bearer for routes about a user: a token whose subject is its
// own client (client_credentials, jwt-bearer) speaks for a client, never for a
// user, whatever the ids look like.
func (s *Server) userBearer(c echo.Context) (*idp.AccessClaims, error) {
	claims, err := s.bearer(c)
	if err != nil {
		return nil, err
	}
	if claims.ForClient() {
		return nil, s.invalidToken(c, realm, "a client's token does not represent a user")
	}
	return claims, nil
}

// userinfo serves OIDC Core §5.3 for tokens with the openid scope.
func (s *Server) userinfo(c echo.Context) error {
	claims, err := s.userBearer(c)
	if err != nil {
		s.corsForAnyClient(c) // no client to ask: see cors.go
		return err
	}
	s.corsForClient(c, claims.ClientID)
	if !claims.HasScope("openid") {
		ch := s.tokenChallenge(c, realm)
		ch.Error, ch.Scope = "insufficient_scope", "openid"
		return ch.deny(c, http.StatusForbidden, "the token lacks the openid scope")
	}
	u, err := s.dir.User(c.Request().Context(), claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		ch := s.tokenChallenge(c, realm)
		ch.Error, ch.Description = "invalid_token", "no such user"
		return ch.deny(c, http.StatusUnauthorized, "the token's subject is not a user")
	}
	if err != nil {
		return err
	}
	out := map[string]any{"sub": u.ID}
	if claims.HasScope("profile") {
		out["preferred_username"] = u.Username
		if u.Name != "" {
			out["name"] = u.Name
		}
	}
	if claims.HasScope("email") && u.Email != "" {
		out["email"] = u.Email
		out["email_verified"] = false
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// UserView is a user as the JSON API shows them (never the hash).
type UserView struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email,omitempty"`
	Name      string `json:"name,omitempty"`
	Admin     bool   `json:"admin,omitempty"`
	CreatedAt string `json:"created_at"`
}

func viewUser(u store.User) UserView {
	return UserView{ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, Admin: u.Admin,
		CreatedAt: u.CreatedAt.UTC().Format("2006-01-02T15:04:05Z")}
}

// signup serves POST /users (JSON).
func (s *Server) signup(c echo.Context) error {
	if !s.cfg.IDP.SignupEnabled() {
		return echo.NewHTTPError(http.StatusForbidden, "signup is disabled on this server")
	}
	if mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); mt != echo.MIMEApplicationJSON {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send JSON: {\"username\", \"password\", \"email\", \"name\"}")
	}
	var nu idp.NewUser
	if err := c.Bind(&nu); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "the body is not a JSON object with username, password, email, name")
	}
	u, err := s.dir.CreateUser(c.Request().Context(), nu)
	var ve *idp.ValidationError
	switch {
	case errors.As(err, &ve):
		return echo.NewHTTPError(http.StatusBadRequest, ve.Error())
	case errors.Is(err, idp.ErrUserExists):
		return echo.NewHTTPError(http.StatusConflict, err.Error())
	case err != nil:
		return err
	}
	s.cfg.Logger.Info("user signed up", "user_id", u.ID)
	c.Response().Header().Set(echo.HeaderLocation, "/users/me")
	return c.JSON(http.StatusCreated, viewUser(u))
}

func (s *Server) me(c echo.Context) error {
	claims, err := s.userBearer(c)
	if err != nil {
		return err
	}
	u, err := s.dir.User(c.Request().Context(), claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "the token's subject is not a user")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, viewUser(u))
}

// login serves POST /login, routed by Content-Type: an HTML form post
// (application/x-www-form-urlencoded, or multipart/form-data) is the browser
// login, CSRF-checked, answering errors as pages; anything else is the script
// login of POST /login/assertion, kept here for the scripts that post to
// /login.
func (s *Server) login(c echo.Context) error {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	if mt == echo.MIMEApplicationForm || mt == echo.MIMEMultipartForm {
		return errorsAs(pageErrors, s.ui.csrf(s.formLogin))(c)
	}
	return s.scriptLogin(c)
}

// scriptLogin serves POST /login/assertion, the script login: a client signs
// an assertion with its registered key and posts it as the body
// (Content-Type: application/jwt); the answer is the bare access token, as
// application/jwt.
func (s *Server) scriptLogin(c echo.Context) error {
	mt, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType))
	switch mt {
	case "application/jwt", "text/plain", "":
	default:
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "the script login takes a client-signed JWT with Content-Type: application/jwt")
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	assertion := strings.TrimSpace(string(body))
	tok, err := s.cfg.IDP.ScriptLogin(c.Request().Context(), assertion)
	if err != nil {
		s.loginFailed(c, LoginScript, describe(err), "", idp.UnverifiedIssuer(assertion))
	} else {
		s.cfg.Metrics.Login(LoginScript, LoginSuccess)
	}
	var oe *idp.Error
	if errors.As(err, &oe) && oe.Status == http.StatusUnauthorized {
		// RFC 9110 §15.5.2: a 401 carries a challenge. The credential here is
		// the client-signed JWT in the body.
		challenge{Scheme: "JWT", Realm: realm, Error: oe.Code, Description: oe.Description}.set(c)
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "application/jwt", []byte(tok))
}

// getKey is the key server: a client's registered public keys as PEM, for
// services that verify requests the client signed.
func (s *Server) getKey(c echo.Context) error {
	id := c.QueryParam("identity")
	if id == "" {
		return echo.NewHTTPError(http.StatusBadRequest, "give ?identity=<client id>")
	}
	cl, err := s.dir.Client(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "unknown identity "+strconv.Quote(id))
	}
	if err != nil {
		return err
	}
	if cl.Keys == nil || cl.Keys.Len() == 0 {
		return echo.NewHTTPError(http.StatusNotFound, "identity "+strconv.Quote(id)+" has no registered public key")
	}
	var out []byte
	for i := 0; i < cl.Keys.Len(); i++ {
		k, _ := cl.Keys.Key(i)
		var raw any
		if err := k.Raw(&raw); err != nil {
			return err
		}
		der, err := x509.MarshalPKIXPublicKey(raw)
		if err != nil {
			return err
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return c.Blob(http.StatusOK, "application/x-pem-file", out)
}
