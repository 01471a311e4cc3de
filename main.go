// Command keygate is a self-hosted OpenID Connect identity provider: it
// rotates RSA signing keys, publishes them as a JWKS with discovery, and
// issues OAuth 2.0 / OIDC tokens. `keygate` alone runs the server;
// `keygate keys|clients|users ...` manage the same database, even while a
// server runs. The command line is internal/cli, the server internal/app.
package main

import (
	"os"

	"github.com/keygate/keygate/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
