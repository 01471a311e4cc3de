// Command resource-server is an API protected by Keygate tokens, built only on
// Keygate's jwks SDK: it verifies every token offline against the cached key
// set and never calls Keygate on the request path. It accepts RS256, ES256
// and EdDSA access tokens (a client registered with signing_alg gets the
// latter two), each only with a published key of its type.
//
// Usage:
//
//	go run ./examples/resource-server -issuer http://localhost:8080 -listen 127.0.0.1:8090
//
// Routes:
//
//	POST /           the raw access token is the body; a line of The Zen of
//	                 Python inside its validity window, 403 with the reason outside it
//	GET  /api/secret Authorization: Bearer <token> (or JWT <token>), or, for a
//	                 token bound to the client's key, Authorization: DPoP <token>
//	                 with a DPoP proof header (RFC 9449); behind a proxy, give
//	                 -external-url so proofs are checked against the public URL
//	POST /query      a client-signed request: the application/jwt body is a JWT
//	                 the client signed with its own registered key,
//	                 {"query": "...", "iss": "<client id>", "iat": ...}; the key comes
//	                 from Keygate's key server; answers {"<query>": 42}
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/jwks/echojwks"
)

// Config is the resource server's settings.
type Config struct {
	Issuer   string        // Keygate's issuer URL (discovery)
	Audience []string      // accepted "aud" values; empty accepts any
	Leeway   time.Duration // clock skew allowed on exp/nbf (0: the token's exact window)
	// ExternalURL is how clients reach this server (DPoP proofs name it);
	// empty: the connection's scheme and Host header.
	ExternalURL string
	// Statuses for POST / and /query, outside the window and for bad tokens.
	NotYetValidStatus, ExpiredStatus, InvalidStatus int
}

var zen = []string{
	"Beautiful is better than ugly.", "Explicit is better than implicit.", "Simple is better than complex.",
	"Complex is better than complicated.", "Flat is better than nested.", "Sparse is better than dense.",
	"Readability counts.", "Errors should never pass silently.", "Now is better than never.",
	"Although never is often better than *right* now.",
	"Although that way may not be obvious at first unless you're Dutch.",
	"If the implementation is hard to explain, it's a bad idea.",
}

// New builds the API. The verifiers fetch discovery and the key set now, then
// serve from their caches.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*echo.Echo, error) {
	vcfg := jwks.Config{Audience: cfg.Audience, Leeway: cfg.Leeway, NoLeeway: cfg.Leeway == 0, Logger: log,
		Algorithms: []string{"RS256", "ES256", "EdDSA"}}
	v, err := jwks.NewVerifier(ctx, cfg.Issuer, vcfg)
	if err != nil {
		return nil, fmt.Errorf("keygate verifier for %s: %w", cfg.Issuer, err)
	}
	// Client-signed requests carry iat but no exp: accept them for five minutes.
	clients, err := jwks.NewClientKeyVerifier(cfg.Issuer+"/getkey", jwks.Config{
		Leeway: cfg.Leeway, NoLeeway: cfg.Leeway == 0, Logger: log, MaxAgeWithoutExpiry: 5 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("client key verifier: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.BodyLimit("16K"), middleware.Recover())

	// The access token is the whole body.
	e.POST("/", func(c echo.Context) error {
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return c.String(http.StatusBadRequest, "cannot read the body")
		}
		if _, err := v.Verify(c.Request().Context(), strings.TrimSpace(string(body))); err != nil {
			return c.String(statusFor(cfg, err), reason(err))
		}
		return c.String(http.StatusOK, zen[rand.IntN(len(zen))])
	})

	// A protected API route.
	e.GET("/api/secret", func(c echo.Context) error {
		claims, _ := jwks.ClaimsFromContext(c.Request().Context())
		return c.JSON(http.StatusOK, map[string]any{"message": "the secret is 42", "sub": claims.Subject, "client_id": claims.ClientID})
	}, echojwks.Middleware(v, jwks.MiddlewareConfig{ExternalURL: cfg.ExternalURL}))

	// A client-signed request: the body is a JWT signed with the client's
	// registered key. Refusals keep this API's statuses and JSON shape.
	e.POST("/query", func(c echo.Context) error {
		claims, _ := jwks.ClaimsFromContext(c.Request().Context())
		q, _ := claims.Raw()["query"].(string)
		if q == "" {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "the token has no query claim"})
		}
		return c.JSON(http.StatusOK, map[string]int{q: 42})
	}, echojwks.Middleware(clients, jwks.MiddlewareConfig{
		JWTBody: true,
		OnRefusal: func(w http.ResponseWriter, _ *http.Request, _ int, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(statusFor(cfg, err))
			_ = json.NewEncoder(w).Encode(map[string]string{"error": reason(err)})
		},
	}))
	return e, nil
}

func statusFor(cfg Config, err error) int {
	switch {
	case errors.Is(err, jwks.ErrNotYetValid):
		return cfg.NotYetValidStatus
	case errors.Is(err, jwks.ErrExpired):
		return cfg.ExpiredStatus
	}
	return cfg.InvalidStatus
}

// reason is the message a person reads, as PyJWT's errors are: the
// SDK's errors say what failed ("token is not yet valid (nbf): ...").
func reason(err error) string {
	msg := err.Error()
	return strings.ToUpper(msg[:1]) + msg[1:]
}

func main() {
	var cfg Config
	var listen, aud string
	flag.StringVar(&cfg.Issuer, "issuer", "http://localhost:8080", "Keygate issuer URL")
	flag.StringVar(&listen, "listen", "127.0.0.1:8090", "listen address")
	flag.StringVar(&aud, "audience", "", "accepted audiences, comma-separated (empty: any)")
	flag.DurationVar(&cfg.Leeway, "leeway", 0, "clock skew allowed on exp/nbf")
	flag.StringVar(&cfg.ExternalURL, "external-url", "", "the scheme://host[:port] clients use, for DPoP proofs (empty: the request's)")
	flag.IntVar(&cfg.NotYetValidStatus, "not-yet-valid-status", http.StatusForbidden, "status for a token before its nbf")
	flag.IntVar(&cfg.ExpiredStatus, "expired-status", http.StatusForbidden, "status for an expired token")
	flag.IntVar(&cfg.InvalidStatus, "invalid-status", http.StatusForbidden, "status for any other bad token on POST / and /query")
	flag.Parse()
	if aud != "" {
		cfg.Audience = strings.Split(aud, ",")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := New(ctx, cfg, log)
	if err != nil {
		log.Error("start", "err", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	log.Info("resource server started", "listen", ln.Addr().String(), "issuer", cfg.Issuer)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
