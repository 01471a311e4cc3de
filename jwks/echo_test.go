package jwks_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/jwks"
	"github.com/keygate/keygate/jwks/echojwks"
)

// TestEchoMiddleware runs the net/http middleware cases through the Echo
// adapter (it lives here, in jwks's external tests, to share those cases;
// test imports do not add to what importing jwks costs).
func TestEchoMiddleware(t *testing.T) {
	t.Parallel()
	runMiddlewareCases(t, func(v *jwks.Verifier, tc mwCase) *http.Response {
		e := echo.New()
		e.Any("/res", func(c echo.Context) error {
			fromCtx, ok := jwks.ClaimsFromContext(c.Request().Context())
			fromEcho, ok2 := c.Get(echojwks.ClaimsKey).(*jwks.Claims)
			if !ok || !ok2 || fromCtx != fromEcho {
				return c.String(http.StatusInternalServerError, "claims missing")
			}
			body, _ := io.ReadAll(c.Request().Body)
			return c.String(http.StatusOK, fromEcho.Subject+"|"+string(body))
		}, echojwks.Middleware(v, tc.mc))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, tc.req())
		res := rec.Result()
		if tc.wantStatus == 200 {
			res.Header.Set("Content-Type", "application/json") // echo's text/plain is fine
		}
		return res
	})
}
