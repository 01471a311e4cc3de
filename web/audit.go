package web

import (
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"
)

// Context keys of the audit line: who the admin is (set by requireAdmin) and
// what a handler adds about its write (auditDetails).
const (
	auditActorKey   = "keygate.audit_actor"
	auditDetailsKey = "keygate.audit_details"
)

// ActorBootstrapToken is the audit actor of a request authenticated with the
// bootstrap admin.token rather than an admin user's access token.
const ActorBootstrapToken = "bootstrap token"

// auditDetails adds attributes (never a secret) to the request's audit line.
func auditDetails(c echo.Context, attrs ...any) {
	prev, _ := c.Get(auditDetailsKey).([]any)
	c.Set(auditDetailsKey, append(prev, attrs...))
}

// auditWrites logs one line, "admin action", for every request to the admin
// API that may change something (any method but GET and HEAD), whether it
// succeeded or not: the actor (an admin user's id, or ActorBootstrapToken),
// the action (method and route), the target (the route's parameters: a kid,
// a client id, a login), the status, and what the handler added with
// auditDetails. Doing it here rather than in each handler means a new write
// route cannot forget it. Request bodies are never logged: they may hold
// secrets.
func (s *Server) auditWrites(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		m := c.Request().Method
		if m == http.MethodGet || m == http.MethodHead {
			return next(c)
		}
		err := next(c)
		status := c.Response().Status
		if err != nil {
			status = http.StatusInternalServerError
			var he *echo.HTTPError
			if errors.As(err, &he) {
				status = he.Code
			}
		}
		actor, _ := c.Get(auditActorKey).(string)
		target := strings.Join(c.ParamValues(), ",")
		if target == "" {
			target = "-"
		}
		outcome, level := "ok", slog.LevelInfo
		if status >= 400 {
			outcome, level = "refused", slog.LevelWarn
		}
		attrs := []any{"audit", true, "actor", actor, "action", m + " " + c.Path(), "target", target,
			"outcome", outcome, "status", status, "remote_ip", c.RealIP()}
		if d, ok := c.Get(auditDetailsKey).([]any); ok {
			attrs = append(attrs, d...)
		}
		s.cfg.Logger.Log(c.Request().Context(), level, "admin action", attrs...)
		return err
	}
}

// Routes lists every route as "METHOD /path" (Echo's :param form), so tests
// can check that each admin write route is audited and documented.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.echo.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// givenFields lists the JSON names of the fields set (non-nil pointers) in
// a PATCH body struct, for the audit line: which settings a write changed,
// without their values (a redirect URI list is no secret, but the line stays
// short and the answer holds the values).
func givenFields(body any) []string {
	v := reflect.ValueOf(body)
	var out []string
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
	}
	return out
}
