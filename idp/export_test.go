package idp

import (
	"errors"

	"github.com/keygate/keygate/jwks"
)

// StubSigner stands in for the key set in tests of what signs nothing
// (passwords, sessions, the directory): every signature fails.
var StubSigner Signer = stubSigner{}

type stubSigner struct{}

func (stubSigner) Sign([]byte, string) (string, error) {
	return "", errors.New("no signing key in this test")
}
func (stubSigner) KeySet() *jwks.Document { return nil }
