package web

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keygate/keygate/idp"
)

// Discovery is the provider metadata served at both
// /.well-known/openid-configuration (OpenID Connect Discovery 1.0) and
// /.well-known/oauth-authorization-server (RFC 8414). It lists only what this
// server answers: an endpoint appears here when its route exists.
type Discovery struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"` // RP-initiated logout (logout.go)
	DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	// AccessTokenSigningAlgValuesSupported lists the algorithms access
	// tokens (RFC 9068 JWTs) may be signed with, the same as ID tokens: a
	// client's tokens use its signing_alg (RS256 unless registered
	// otherwise). Not a registered metadata name; resource servers that
	// read it learn which algorithms to accept.
	AccessTokenSigningAlgValuesSupported       []string `json:"access_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthSigningAlgValues  []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	ACRValuesSupported                         []string `json:"acr_values_supported"`

	// RFC 8414 §2: the algorithms are a MUST while revocation lists
	// private_key_jwt. OIDC Discovery §3: request_uri_parameter_supported
	// defaults to true, so its false is published, as is the request
	// parameter's; /authorize refuses both.
	RevocationEndpointAuthSigningAlgValues []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	RequestParameterSupported              bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported           bool     `json:"request_uri_parameter_supported"`
	// DPoPSigningAlgValuesSupported are the DPoP proof algorithms the token
	// endpoint and Keygate's protected endpoints accept (RFC 9449 §5.1).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
}

func discoveryDocument(issuer string, p *idp.Provider) ([]byte, error) {
	algs := idp.AssertionAlgorithms()
	d := Discovery{
		Issuer:                issuer,
		AuthorizationEndpoint: issuer + "/authorize",
		JWKSURI:               issuer + "/jwks",
		TokenEndpoint:         issuer + "/token",
		UserinfoEndpoint:      issuer + "/userinfo",
		RevocationEndpoint:    issuer + "/revoke",
		IntrospectionEndpoint: issuer + "/introspect",
		EndSessionEndpoint:    issuer + "/end_session",
		// RFC 8628: the device grant (web/device.go).
		DeviceAuthorizationEndpoint: issuer + "/device/code",
		// The authorization code flow with PKCE (S256 only), answered in the
		// query, with iss in the response (RFC 9207).
		ResponseTypesSupported:                     idp.ResponseTypes,
		ResponseModesSupported:                     []string{"query"},
		CodeChallengeMethodsSupported:              idp.CodeChallengeMethods,
		AuthorizationResponseIssParameterSupported: true,
		GrantTypesSupported:                        idp.GrantTypes,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           p.SigningAlgorithms(),
		AccessTokenSigningAlgValuesSupported:       p.SigningAlgorithms(),
		// "none": public clients identify themselves by client_id alone (password
		// and refresh_token grants, and authorization_code with PKCE; no secret
		// to keep).
		TokenEndpointAuthMethodsSupported:          append(append([]string{}, idp.AuthMethods...), "none"),
		TokenEndpointAuthSigningAlgValuesSupported: algs,
		RevocationEndpointAuthMethodsSupported:     append(append([]string{}, idp.AuthMethods...), "none"),
		IntrospectionEndpointAuthMethodsSupported:  idp.AuthMethods,
		IntrospectionEndpointAuthSigningAlgValues:  algs,
		ScopesSupported: []string{"openid", "profile", "email"},
		ClaimsSupported: []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "amr", "acr", "nonce", "at_hash",
			"preferred_username", "name", "email", "email_verified"},
		// The authentication context classes of idp/authn.go; /authorize
		// honours acr_values with them.
		ACRValuesSupported: idp.ACRValuesSupported,

		RevocationEndpointAuthSigningAlgValues: algs,
		RequestParameterSupported:              false,
		RequestURIParameterSupported:           false,
		DPoPSigningAlgValuesSupported:          p.DPoPAlgorithms(),
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
