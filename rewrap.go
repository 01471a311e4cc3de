package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/rotation"
)

// sealer loads the key-encryption keyring (current key first) the configuration
// names. It never creates a development key file when the store already holds
// sealed keys: they would not open under a new one.
func (d *deps) sealer() (*rotation.Sealer, error) {
	keys, err := rotation.LoadKEK(rotation.KEKSource{Value: d.cfg.KeyEncryptionKey, File: d.cfg.Keys.EncryptionKeyFile,
		DevDefault: d.cfg.DevKEKPath(), SealedKeysExist: d.sealedKeysExist}, d.log)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, k := range keys {
			clear(k)
		}
	}()
	if len(keys) > 1 {
		d.log.Info("key-encryption keyring: the first key seals, the others only open; drop them once `keygate keys rewrap` has run",
			"sealing_kek", rotation.KEKID(keys[0]), "keys", len(keys))
	}
	return rotation.NewKeyring(keys)
}

// sealedKeysExist reports whether the store holds any sealed private key.
func (d *deps) sealedKeysExist() (bool, error) {
	keys, err := d.store.ListKeys(context.Background())
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if len(k.Sealed) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// newRewrapCmd is `keygate keys rewrap`: the step of a key-encryption key change
// that seals every stored key again under the new (first) key.
func newRewrapCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "rewrap",
		Short: "Seal every stored private key again under the first key-encryption key of the keyring (safe while servers run)",
		Long: "Seal every stored private key again under the first key-encryption key of the keyring\n" +
			"(KEYGATE_KEY_ENCRYPTION_KEY=new,old or a keys.encryption_key_file with the new key on the first line).\n" +
			"Start every server with the keyring first; afterwards the old key can be dropped.\n" +
			"Each key is rewritten on its own with a compare-and-swap write; running it again changes nothing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer d.store.Close()
			return rewrap(cmd.Context(), o, d)
		},
	}
}

// rewrap re-seals the stored keys and reports how many it changed.
func rewrap(ctx context.Context, o *options, d *deps) error {
	sealer, err := d.sealer()
	if err != nil {
		return err
	}
	res, err := rotation.Rewrap(ctx, d.store, sealer)
	if err != nil {
		return explain(err)
	}
	fmt.Fprintf(o.stdout, "rewrapped: %d keys re-sealed under key-encryption key %s; %d already were\n",
		res.Resealed, sealer.CurrentID(), res.Current)
	return nil
}
