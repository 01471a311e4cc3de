package idp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// digest is how an opaque secret handed out — a refresh token, an
// authorization code, a session cookie — is found in the store without the
// store holding it: the hex SHA-256 of the token is the row's id.
func digest(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// newRefreshToken returns an opaque 256-bit token and its storage ID.
func newRefreshToken() (token, id string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("generate refresh token: %w", err)
	}
	token = "kgr_" + base64.RawURLEncoding.EncodeToString(b)
	return token, digest(token), nil
}
