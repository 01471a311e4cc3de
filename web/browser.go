package web

// The browser side of Keygate: the authorization endpoint, and the login,
// signup, account and logout pages, server-rendered from embedded templates
// with one stylesheet and no JavaScript. Every form is CSRF-protected by
// Echo's CSRF middleware (double-submit token: a hidden "csrf" field that
// must match a SameSite=Strict cookie). Sessions are store-backed (package
// idp); the cookie holds only a random 256-bit value.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/style.css
var styleCSS []byte

//go:embed static/passkeys.js
var passkeysJS []byte

// browserUI is the browser pages' configuration, built once by New.
type browserUI struct {
	pages         map[string]*template.Template
	cssVersion    string // content hash, so the stylesheet can be cached for long
	jsVersion     string // the same for the passkey script
	secure        bool   // the issuer is https: cookies are Secure
	sessionCookie string
	csrfCookie    string
	csrf          echo.MiddlewareFunc
}

// Cookie names. Over https they take the __Host- prefix, which browsers
// accept only with Secure, Path=/ and no Domain: no subdomain can plant them.
const (
	sessionCookieName = "keygate_session"
	csrfCookieName    = "keygate_csrf"
)

func newBrowserUI(issuer string) (*browserUI, error) {
	ui := &browserUI{pages: map[string]*template.Template{}, secure: strings.HasPrefix(issuer, "https://"),
		sessionCookie: sessionCookieName, csrfCookie: csrfCookieName}
	if ui.secure {
		ui.sessionCookie, ui.csrfCookie = "__Host-"+sessionCookieName, "__Host-"+csrfCookieName
	}
	sum := sha256.Sum256(styleCSS)
	ui.cssVersion = hex.EncodeToString(sum[:6])
	sum = sha256.Sum256(passkeysJS)
	ui.jsVersion = hex.EncodeToString(sum[:6])
	for _, page := range []string{"login", "signup", "account", "error", "consent", "logout", "totp", "enrol", "recovery"} {
		t, err := template.New(page).ParseFS(templateFiles, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", page, err)
		}
		ui.pages[page] = t
	}
	return ui, nil
}

// registerBrowser adds the browser routes; their errors are pages.
func (s *Server) registerBrowser(e *echo.Echo, signupLimit echo.MiddlewareFunc) error {
	ui, err := newBrowserUI(s.cfg.Issuer)
	if err != nil {
		return err
	}
	s.ui = ui
	ui.csrf = s.csrfMiddleware()
	csrf := ui.csrf
	if err := s.registerDevice(e); err != nil {
		return err
	}
	s.shapeErrors(pageErrors,
		e.GET("/authorize", s.authorize, csrf),
		e.POST("/authorize", s.authorizePost),
		e.GET("/login", s.loginPage, csrf),
		// POST /login is registered in New: it also serves the script login.
		e.GET("/signup", s.signupPage, csrf),
		e.POST("/signup", s.signupSubmit, signupLimit, csrf),
		e.GET("/account", s.account, csrf),
		e.POST("/logout", s.logout, csrf))
	s.registerAccount(e, csrf)
	s.registerPasskeys(e, csrf) // passkeys.go
	s.registerSecondFactor(e, csrf)
	s.registerConsent(e)
	s.registerEndSession(e, csrf) // logout.go
	e.GET("/static/style.css", s.stylesheet)
	return nil
}

// csrfMiddleware is Echo's CSRF middleware in double-submit mode: the token
// is a hidden "csrf" form field that must equal the HttpOnly, SameSite=Strict
// cookie. Echo also trusts Fetch Metadata (Sec-Fetch-Site) instead of the
// token when a browser sends it; here that header only adds a check (a
// cross-site POST is refused outright) and the token is always required, so
// a proxy that strips the header cannot break logins, and every form carries
// a real token.
func (s *Server) csrfMiddleware() echo.MiddlewareFunc { return s.csrfWith("form:csrf") }

// csrfWith is the CSRF middleware with the token looked up as lookup says
// (Echo's TokenLookup: "form:csrf", or a header for the passkey script's
// JSON requests); the cookie is the same.
func (s *Server) csrfWith(lookup string) echo.MiddlewareFunc {
	return s.csrfCheck(middleware.CSRFWithConfig(middleware.CSRFConfig{
		TokenLookup:    lookup,
		ContextKey:     "csrf",
		CookieName:     s.ui.csrfCookie,
		CookiePath:     "/",
		CookieMaxAge:   int((12 * time.Hour).Seconds()),
		CookieHTTPOnly: true,
		CookieSecure:   s.ui.secure,
		CookieSameSite: http.SameSiteStrictMode,
		ErrorHandler: func(err error, c echo.Context) error {
			return s.csrfFailed(c)
		},
	}))
}

// csrfCheck wraps Echo's CSRF middleware mw with the Fetch Metadata check:
// a cross-site POST is refused whatever token it carries.
func (s *Server) csrfCheck(mw echo.MiddlewareFunc) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := mw(next)
		return func(c echo.Context) error {
			r := c.Request()
			if site := r.Header.Get(echo.HeaderSecFetchSite); site != "" {
				switch r.Method {
				case http.MethodGet, http.MethodHead, http.MethodOptions:
				default:
					if site == "cross-site" {
						return s.csrfFailed(c)
					}
				}
				r.Header.Del(echo.HeaderSecFetchSite)
			}
			return h(c)
		}
	}
}

func (s *Server) csrfFailed(c echo.Context) error {
	return s.errorPage(c, http.StatusForbidden, "Please try again",
		"This form expired or did not come from this site, so it was not accepted.",
		"Go back, reload the page and send it again.")
}

// pageData is what the templates see.
type pageData struct {
	Title       string
	CSSVersion  string
	JSVersion   string // the passkey script's content hash
	Passkeys    bool   // passkeys are available: the login page offers them
	CSRF        string
	Error       string
	Notice      string
	ClientName  string
	Request     string // a sealed authorization request
	ReturnTo    string // a local path to continue to
	SignupURL   string
	LoginURL    string
	Username    string
	Email       string
	Name        string
	Field       map[string]string // signup: problem per field
	User        store.User
	Account     *accountView    // the account page: sessions
	Scopes      []idp.ScopeInfo // consent: what the app asks for
	Apps        []idp.AppAccess // account: apps with access
	AppsNotice  string          // account: an app's access was revoked
	Logout      *logoutPage     // logout.go
	Device      *deviceView     // the device verification page (device.go)
	PasskeyList []passkeyRow    // account: the user's passkeys (passkeys.go)
	TOTP        *totpView       // second factor pages and the account section (secondfactor.go)
}

// setPageHeaders applies to every HTML page: no caching (pages carry CSRF
// tokens and personal data), no framing (clickjacking), a strict content
// security policy (the pages need nothing but their stylesheet and the
// same-origin passkey script, which fetches only from this origin), and no
// Referer leaving the site. No form-action directive: a successful login
// redirects to the client's redirect URI, which browsers would check
// against it.
func setPageHeaders(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *Server) render(c echo.Context, status int, page string, d pageData) error {
	d.CSSVersion, d.JSVersion = s.ui.cssVersion, s.ui.jsVersion
	d.Passkeys = s.cfg.IDP.PasskeysEnabled()
	if d.CSRF == "" {
		d.CSRF, _ = c.Get("csrf").(string)
	}
	if d.Field == nil {
		d.Field = map[string]string{}
	}
	var buf bytes.Buffer
	if err := s.ui.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		return fmt.Errorf("render %s: %w", page, err)
	}
	setPageHeaders(c.Response().Header())
	return c.HTMLBlob(status, buf.Bytes())
}

func (s *Server) stylesheet(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", styleCSS)
}

// localPath returns s if it is a path on this site ("/account", not
// "//evil.example", "/\evil.example" or "https://evil.example"), else "".
// It guards every return_to against open redirects.
func localPath(s string) string {
	if s == "" || len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return ""
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f { // browsers drop tabs and newlines: "/\t/evil" is "//evil"
			return ""
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	return s
}

// withParams is path with the non-empty parameters as its query.
func withParams(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// --- sessions ---

func (s *Server) setSessionCookie(c echo.Context, token string) {
	c.SetCookie(&http.Cookie{Name: s.ui.sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.ui.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(s.cfg.IDP.SessionAbsoluteTimeout().Seconds())})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: s.ui.sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.ui.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

// session returns the browser's live session, or nil. A cookie that names
// no live session is cleared.
func (s *Server) session(c echo.Context) (*idp.Session, error) {
	ck, err := c.Cookie(s.ui.sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	sess, err := s.cfg.IDP.Session(c.Request().Context(), ck.Value)
	switch {
	case errors.Is(err, idp.ErrNoSession):
		s.clearSessionCookie(c)
		return nil, nil
	case err != nil:
		return nil, err
	}
	return sess, nil
}

// startSession logs u in with a brand-new session (never the one the browser
// may have sent: no session fixation), authenticated now with the methods
// amr (idp.StartSession), ending the browser's previous one.
func (s *Server) startSession(c echo.Context, u store.User, amr []string) (*idp.Session, error) {
	return s.replaceSession(c, func(ctx context.Context) (string, *idp.Session, error) {
		return s.cfg.IDP.StartSession(ctx, u, amr)
	})
}

// replaceSession ends the browser's session, if any, and sets the cookie
// of the one start makes.
func (s *Server) replaceSession(c echo.Context, start func(context.Context) (string, *idp.Session, error)) (*idp.Session, error) {
	ctx := c.Request().Context()
	if ck, err := c.Cookie(s.ui.sessionCookie); err == nil && ck.Value != "" {
		if err := s.cfg.IDP.EndSession(ctx, ck.Value); err != nil {
			return nil, err
		}
	}
	token, sess, err := start(ctx)
	if err != nil {
		return nil, err
	}
	s.setSessionCookie(c, token)
	return sess, nil
}

// --- the authorization endpoint ---

// authorizePost accepts an authorization request sent by POST (OIDC Core
// §3.1.2.1) by redirecting it to GET, the one place requests are served.
func (s *Server) authorizePost(c echo.Context) error {
	if err := c.Request().ParseForm(); err != nil {
		return s.errorPage(c, http.StatusBadRequest, "Invalid sign-in request", "The request could not be read.", "")
	}
	return c.Redirect(http.StatusSeeOther, "/authorize?"+c.Request().PostForm.Encode())
}

// authorize serves GET /authorize: with a good enough session it issues a
// code and redirects to the client; otherwise it shows the login form, which
// carries the validated request, sealed.
func (s *Server) authorize(c echo.Context) error {
	ctx := c.Request().Context()
	ar, err := s.cfg.IDP.ParseAuthorize(ctx, c.QueryParams())
	if err != nil {
		return s.authorizeFailed(c, err)
	}
	sess, err := s.session(c)
	if err != nil {
		return s.internalError(c, err)
	}
	return s.continueAuthorization(c, ar, sess)
}

func (s *Server) continueAuthorization(c echo.Context, ar *idp.AuthRequest, sess *idp.Session) error {
	now := s.cfg.Now()
	if !ar.NeedsLogin(sess, now) {
		return s.issueCode(c, ar, sess, http.StatusFound)
	}
	if ar.NoPrompt() {
		return c.Redirect(http.StatusFound, s.cfg.IDP.Refuse(ar, "login_required", "the user is not logged in").RedirectURL())
	}
	sealed, err := s.cfg.IDP.SealAuthRequest(ar)
	if err != nil {
		return s.internalError(c, err)
	}
	d := pageData{Title: "Log in", ClientName: ar.ClientName, Request: sealed, Username: ar.LoginHint}
	if sess != nil && d.Username == "" {
		d.Username = sess.User.Username // prompt=login or max_age: the same person, again
	}
	if s.cfg.IDP.SignupEnabled() {
		d.SignupURL = withParams("/signup", "request", sealed)
	}
	return s.render(c, http.StatusOK, "login", d)
}

// issueCode issues ar's code, unless the user must consent first
// (consent.go).
func (s *Server) issueCode(c echo.Context, ar *idp.AuthRequest, sess *idp.Session, status int) error {
	if asked, err := s.askConsent(c, ar, sess); asked {
		return err
	}
	return s.deliverCode(c, ar, sess, status)
}

// deliverCode issues ar's code and redirects to the client with it.
func (s *Server) deliverCode(c echo.Context, ar *idp.AuthRequest, sess *idp.Session, status int) error {
	to, err := s.cfg.IDP.IssueCode(c.Request().Context(), ar, sess)
	if err != nil {
		return s.internalError(c, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(status, to)
}

// authorizeFailed answers a refused authorization request: back to the
// client when the redirect URI is known good, as a page otherwise.
func (s *Server) authorizeFailed(c echo.Context, err error) error {
	var ae *idp.AuthorizeError
	if !errors.As(err, &ae) {
		return s.internalError(c, err)
	}
	if to := ae.RedirectURL(); to != "" {
		return c.Redirect(http.StatusFound, to)
	}
	return s.errorPage(c, http.StatusBadRequest, "Invalid sign-in request",
		"The application sent an invalid sign-in request: "+ae.Description+".",
		"Go back to the application and try again; if it keeps happening, tell its operator.")
}

// flowForm is the sign-in state a login-flow form carries from page to
// page: the sealed authorization request (ar, opened; nil when none) and a
// local return_to.
type flowForm struct {
	ar       *idp.AuthRequest
	sealed   string
	returnTo string
}

// page is the data of a login-flow page titled title that carries f on.
func (f flowForm) page(title string) pageData {
	d := pageData{Title: title, Request: f.sealed, ReturnTo: f.returnTo}
	if f.ar != nil {
		d.ClientName = f.ar.ClientName
	}
	return d
}

// postedFlow parses a posted login-flow form and opens its request; ok is
// false when a page has been written instead.
func (s *Server) postedFlow(c echo.Context) (f flowForm, ok bool, err error) {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return f, false, s.errorPage(c, http.StatusBadRequest, "Invalid form", "The form could not be read.", "")
	}
	f.sealed, f.returnTo = r.PostFormValue("request"), localPath(r.PostFormValue("return_to"))
	f.ar, ok, err = s.openRequest(c, f.sealed)
	return f, ok, err
}

// openRequest reads the sealed authorization request a form carries; nil
// when there is none. ok is false when a page has been written instead.
func (s *Server) openRequest(c echo.Context, sealed string) (ar *idp.AuthRequest, ok bool, err error) {
	if sealed == "" {
		return nil, true, nil
	}
	ar, err = s.cfg.IDP.OpenAuthRequest(c.Request().Context(), sealed)
	if errors.Is(err, idp.ErrBadAuthRequest) {
		return nil, false, s.errorPage(c, http.StatusBadRequest, "This page has expired",
			"The sign-in request is no longer valid.", "Go back to the application and sign in again.")
	}
	if err != nil {
		return nil, false, s.authorizeFailed(c, err)
	}
	return ar, true, nil
}

// afterLogin continues where the login started: the authorization request,
// a local return_to, or the account page.
func (s *Server) afterLogin(c echo.Context, ar *idp.AuthRequest, sess *idp.Session, returnTo string) error {
	switch {
	case ar != nil:
		return s.issueCode(c, ar, sess, http.StatusSeeOther)
	case returnTo != "":
		return c.Redirect(http.StatusSeeOther, returnTo)
	}
	return c.Redirect(http.StatusSeeOther, "/account")
}

// --- login ---

// loginPage serves GET /login: a logged-in visitor goes on (to return_to or
// /account); anyone else gets the form.
func (s *Server) loginPage(c echo.Context) error {
	returnTo := localPath(c.QueryParam("return_to"))
	ar, ok, err := s.openRequest(c, c.QueryParam("request"))
	if !ok {
		return err
	}
	sess, err := s.session(c)
	if err != nil {
		return s.internalError(c, err)
	}
	if ar != nil {
		return s.continueAuthorization(c, ar, sess)
	}
	reauth := sess != nil && c.QueryParam("reauth") != "" && !s.cfg.IDP.RecentlyAuthenticated(sess)
	if sess != nil && !reauth {
		return s.afterLogin(c, nil, sess, returnTo)
	}
	d := pageData{Title: "Log in", ReturnTo: returnTo}
	if reauth { // freshAccountSession sent the user here: the form starts a new session
		d.Username, d.Notice = sess.User.Username, "Confirm it's you: sign in again to change how you sign in."
	}
	if c.QueryParam("logged_out") != "" {
		d.Notice = "You have been logged out."
	}
	if s.cfg.IDP.SignupEnabled() {
		d.SignupURL = withParams("/signup", "return_to", returnTo)
	}
	return s.render(c, http.StatusOK, "login", d)
}

// setRetryAfter sets Retry-After to wait in whole seconds, rounded up and
// at least 1, and returns them.
func setRetryAfter(c echo.Context, wait time.Duration) int {
	secs := max(1, int((wait+time.Second-1)/time.Second))
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return secs
}

// invalidLogin is the one message for a wrong username or password.
const invalidLogin = "Invalid username or password."

// loginRetry is the login page shown again after a failed attempt, keeping
// the authorization request, return address and username.
func (s *Server) loginRetry(f flowForm, username string) pageData {
	d := f.page("Log in")
	d.Username = username
	if s.cfg.IDP.SignupEnabled() {
		d.SignupURL = withParams("/signup", "request", f.sealed, "return_to", f.returnTo)
	}
	return d
}

// formLogin serves POST /login from the HTML form (CSRF-checked first).
func (s *Server) formLogin(c echo.Context) error {
	f, ok, err := s.postedFlow(c)
	if !ok {
		return err
	}
	r := c.Request()
	username, pw := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password")
	d := s.loginRetry(f, username)
	if username == "" || pw == "" {
		s.loginFailed(c, LoginForm, &problem{Status: http.StatusOK, Message: "username or password missing"}, username, "")
		d.Error = invalidLogin
		return s.render(c, http.StatusOK, "login", d)
	}
	u, err := s.cfg.IDP.CheckPassword(r.Context(), username, pw, c.RealIP())
	if err == nil {
		if due, derr := s.secondFactorDue(c, u, f.ar, d); due || derr != nil {
			return derr
		}
	}
	var te *idp.ThrottledError
	switch {
	case errors.As(err, &te):
		s.loginFailed(c, LoginForm, &problem{Status: http.StatusTooManyRequests, Message: "throttled"}, username, "")
		secs := setRetryAfter(c, te.RetryAfter)
		d.Error = fmt.Sprintf("Too many failed attempts. Try again in %d seconds.", secs)
		return s.render(c, http.StatusTooManyRequests, "login", d)
	case errors.Is(err, idp.ErrInvalidCredentials):
		s.loginFailed(c, LoginForm, &problem{Status: http.StatusOK, Message: "invalid username or password"}, username, "")
		d.Error = invalidLogin
		return s.render(c, http.StatusOK, "login", d)
	case err != nil:
		s.loginFailed(c, LoginForm, &problem{Status: http.StatusInternalServerError, cause: err}, "", "")
		return s.internalError(c, err)
	}
	sess, err := s.startSession(c, u, []string{idp.AMRPassword})
	if err != nil {
		s.loginFailed(c, LoginForm, &problem{Status: http.StatusInternalServerError, cause: err}, "", "")
		return s.internalError(c, err)
	}
	s.cfg.Metrics.Login(LoginForm, LoginSuccess)
	s.cfg.Logger.Info("browser login", "user_id", u.ID)
	return s.afterLogin(c, f.ar, sess, f.returnTo)
}

// --- signup ---

func (s *Server) signupClosed(c echo.Context) error {
	return s.errorPage(c, http.StatusNotFound, "Signup is closed",
		"This server does not accept new accounts.", "Ask its operator for an account.")
}

func (s *Server) signupPage(c echo.Context) error {
	if !s.cfg.IDP.SignupEnabled() {
		return s.signupClosed(c)
	}
	sealed, returnTo := c.QueryParam("request"), localPath(c.QueryParam("return_to"))
	ar, ok, err := s.openRequest(c, sealed)
	if !ok {
		return err
	}
	d := pageData{Title: "Sign up", Request: sealed, ReturnTo: returnTo,
		LoginURL: withParams("/login", "request", sealed, "return_to", returnTo)}
	if ar != nil {
		d.ClientName = ar.ClientName
	}
	return s.render(c, http.StatusOK, "signup", d)
}

func (s *Server) signupSubmit(c echo.Context) error {
	if !s.cfg.IDP.SignupEnabled() {
		return s.signupClosed(c)
	}
	f, ok, err := s.postedFlow(c)
	if !ok {
		return err
	}
	r := c.Request()
	nu := idp.NewUser{Username: r.PostFormValue("username"), Password: r.PostFormValue("password"),
		Email: r.PostFormValue("email"), Name: r.PostFormValue("name")}
	d := f.page("Sign up")
	d.Username, d.Email, d.Name, d.Field = nu.Username, nu.Email, nu.Name, map[string]string{}
	d.LoginURL = withParams("/login", "request", f.sealed, "return_to", f.returnTo)
	u, err := s.dir.CreateUser(r.Context(), nu)
	var ve *idp.ValidationError
	switch {
	case errors.As(err, &ve):
		d.Field[ve.Field] = strings.ToUpper(ve.Field[:1]) + ve.Field[1:] + " " + ve.Problem + "."
		d.Error = "Please correct the form."
		return s.render(c, http.StatusBadRequest, "signup", d)
	case errors.Is(err, idp.ErrUserExists):
		d.Error = "That username or email is already registered."
		return s.render(c, http.StatusConflict, "signup", d)
	case err != nil:
		return s.internalError(c, err)
	}
	s.cfg.Logger.Info("user signed up", "user_id", u.ID, "via", "form")
	if due, err := s.secondFactorDue(c, u, f.ar, f.page("")); due || err != nil {
		return err
	}
	sess, err := s.startSession(c, u, []string{idp.AMRPassword})
	if err != nil {
		return s.internalError(c, err)
	}
	return s.afterLogin(c, f.ar, sess, f.returnTo)
}

// --- account and logout ---

func (s *Server) account(c echo.Context) error {
	sess, ok, err := s.accountSession(c)
	if !ok {
		return err
	}
	return s.renderAccount(c, http.StatusOK, sess, pageData{Notice: accountNotices[c.QueryParam("done")]})
}

// logout ends the session (POST only, CSRF-protected: a link or an image
// elsewhere cannot log anyone out) and clears the cookie. From the
// end-session confirmation page, it then returns to the client that asked
// (logout.go).
func (s *Server) logout(c echo.Context) error {
	lr, ok, err := s.confirmedLogout(c)
	if !ok {
		return err
	}
	if err := s.endBrowserSession(c); err != nil {
		return s.internalError(c, err)
	}
	if lr != nil {
		return s.loggedOut(c, lr)
	}
	return c.Redirect(http.StatusSeeOther, "/login?logged_out=1")
}
