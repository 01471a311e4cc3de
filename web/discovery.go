package web

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
)

// Discovery is the provider metadata served at both
// /.well-known/openid-configuration (OpenID Connect Discovery 1.0) and
// /.well-known/oauth-authorization-server (RFC 8414). It lists only what this
// server answers: an endpoint appears here when its route exists.
type Discovery struct {
	Issuer                           string   `json:"issuer"`
	JWKSURI                          string   `json:"jwks_uri"`
	ResponseTypesSupported           []string `json:"response_types_supported"`
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
}

func discoveryDocument(issuer string) ([]byte, error) {
	d := Discovery{
		Issuer:  issuer,
		JWKSURI: issuer + "/jwks",
		// Required members; empty until /authorize exists, because advertising a
		// response type that no endpoint serves would mislead clients.
		ResponseTypesSupported:           []string{},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{"RS256"},
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	return b, nil
}

func (s *Server) serveDiscovery(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Access-Control-Allow-Origin", "*")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, s.discovery)
}
