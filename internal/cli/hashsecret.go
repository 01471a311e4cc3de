package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/idp"
)

// newHashSecretCmd is `keygate clients hash-secret`: the secret_sha256 line
// for a static client in config.yaml, whose secret is never written there.
func newHashSecretCmd(o *options) *cobra.Command {
	var generate bool
	cmd := noArgs("hash-secret", "Print the secret_sha256 line for a client in config.yaml, for a secret read on stdin (or --generate'd)",
		func(cmd *cobra.Command, _ []string) error {
			var secret string
			if generate {
				s, err := idp.NewClientSecret()
				if err != nil {
					return err
				}
				secret = s
				fmt.Fprintf(o.stdout, "client_secret: %s\n", secret)
			} else {
				s, err := readSecret(cmd.InOrStdin(), o.stderr, "Secret: ")
				if err != nil {
					return err
				}
				if secret = s; secret == "" {
					return errors.New("empty secret: give one on stdin, or use --generate")
				}
			}
			fmt.Fprintf(o.stdout, "secret_sha256: %x\n", idp.HashSecret(secret))
			fmt.Fprintln(o.stderr, "Paste the secret_sha256 line into the client's entry under clients: in config.yaml.")
			if generate {
				fmt.Fprintln(o.stderr, "Give the client_secret to the client: it is shown once and stored nowhere.")
			}
			return nil
		})
	cmd.Example = "  keygate clients hash-secret --generate\n" +
		"  printf '%s\\n' \"$SECRET\" | keygate clients hash-secret"
	cmd.Flags().BoolVar(&generate, "generate", false, "generate a new secret (kgs_..., 256 random bits) and print it too")
	return cmd
}
