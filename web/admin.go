package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/rotation"
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
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return challenge{Scheme: "Bearer", Realm: adminRealm}.deny(c, http.StatusUnauthorized, "admin bearer token required")
		}
		if s.cfg.AdminToken != "" {
			got := digest(tok)
			if subtle.ConstantTimeCompare(got[:], s.adminKey[:]) == 1 {
				return next(c)
			}
		}
		claims, err := s.bearer(c)
		if err != nil {
			return err
		}
		insufficient := challenge{Scheme: "Bearer", Realm: adminRealm, Error: "insufficient_scope", Scope: AdminScope}
		if claims.ForClient() { // a client's own token never passes for a user
			return insufficient.deny(c, http.StatusForbidden, "admin access requires an admin user's token, not a client's")
		}
		u, err := s.cfg.IDP.User(c.Request().Context(), claims.Subject)
		if err != nil || !u.Admin || !claims.HasScope(AdminScope) {
			return insufficient.deny(c, http.StatusForbidden, "admin access requires an admin user's token with the admin scope")
		}
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
	s.cfg.Logger.Info("admin API: rotation", "activated", res.Activated, "scheduled", res.Scheduled, "remote_ip", c.RealIP())
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
	s.cfg.Logger.Warn("admin API: key revoked", "kid", kid, "remote_ip", c.RealIP())
	return c.JSON(http.StatusOK, map[string]any{"revoked": res.KID, "was": string(res.WasState), "activated": res.Activated})
}
