// Package echojwks adapts jwks.Middleware to the Echo web framework.
//
// It is a separate package so that programs using net/http (or another
// framework) do not pull Echo's modules in by importing jwks.
package echojwks

import (
	"net/http"

	"github.com/keygate/keygate/jwks"
	"github.com/labstack/echo/v4"
)

// ClaimsKey is the echo.Context key under which Middleware stores the
// verified *jwks.Claims (c.Get(ClaimsKey)), for handlers that prefer Echo's
// context to the request's.
const ClaimsKey = "keygate.claims"

// Middleware is jwks.Middleware for Echo: the same token sources, checks
// and RFC 6750 refusals (written directly, so the application's error
// handler cannot change the challenge). The claims are in the request
// context (jwks.ClaimsFromContext(c.Request().Context())) and under
// ClaimsKey.
func Middleware(v jwks.TokenVerifier, mc jwks.MiddlewareConfig) echo.MiddlewareFunc {
	guard := jwks.Middleware(v, mc)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var err error
			guard(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				claims, _ := jwks.ClaimsFromContext(r.Context())
				c.SetRequest(r)
				c.Set(ClaimsKey, claims)
				err = next(c)
			})).ServeHTTP(c.Response(), c.Request())
			return err
		}
	}
}
