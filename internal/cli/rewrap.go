package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/rotation"
)

// newRewrapCmd is `keygate keys rewrap`: the step of a key-encryption key change
// that seals every stored key again under the new (first) key.
func newRewrapCmd(o *options) *cobra.Command {
	cmd := noArgs("rewrap", "Seal every stored private key and TOTP secret again under the first key-encryption key of the keyring (safe while servers run)",
		withDeps(o, func(cmd *cobra.Command, d *app.Deps, _ []string) error {
			return rewrap(cmd.Context(), o, d)
		}))
	cmd.Long = "Seal every stored private key and TOTP secret again under the first key-encryption key of the keyring\n" +
		"(KEYGATE_KEY_ENCRYPTION_KEY=new,old or a keys.encryption_key_file with the new key on the first line).\n" +
		"Start every server with the keyring first; afterwards the old key can be dropped.\n" +
		"Each key and secret is rewritten on its own with a compare-and-swap write; running it again changes nothing."
	return cmd
}

// rewrap re-seals the stored keys and reports how many it changed.
func rewrap(ctx context.Context, o *options, d *app.Deps) error {
	sealer, err := d.Sealer()
	if err != nil {
		return err
	}
	res, err := rotation.Rewrap(ctx, d.Store(), sealer)
	if err != nil {
		return app.Explain(err)
	}
	fmt.Fprintf(o.stdout, "rewrapped: %d keys re-sealed under key-encryption key %s; %d already were\n",
		res.Resealed, sealer.CurrentID(), res.Current)
	resealed, current, err := idp.RewrapTOTP(ctx, d.Store(), sealer)
	if err != nil {
		return app.Explain(err)
	}
	fmt.Fprintf(o.stdout, "rewrapped: %d TOTP secrets re-sealed under key-encryption key %s; %d already were\n",
		resealed, sealer.CurrentID(), current)
	return nil
}
