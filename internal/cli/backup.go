package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/store/sqlite"
)

func newBackupCmd(o *options) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the SQLite database to FILE (works while the server runs)",
		Long: "Write a consistent copy of the SQLite database to FILE, with mode 0600, while the server keeps serving.\n" +
			"The key-encryption key is not in the copy: keep it with the backup, or the signing keys in it cannot be used.\n" +
			"With storage.driver postgres, back up with pg_dump instead. See docs/operations.md.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runBackup(cmd.Context(), o, args[0], force) },
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	return cmd
}

// runBackup backs up the configured database.
//
// Backup is not part of the store.Store contract, and the command switches
// on the configured driver rather than asking the store what it can do: a
// copy in a local file is what a one-file database offers, while a
// PostgreSQL database is backed up by PostgreSQL's own tools (pg_dump, run
// against the server, with their own options for consistency and format),
// which Keygate would only wrap badly. The contract holds only what every
// backend does in full, and nothing in the codebase discovers capabilities at
// run time, so the one backend that backs up is named here. The database is
// not opened through app.OpenDeps either: that would create a missing
// database and migrate an old one, and a backup must do neither.
func runBackup(ctx context.Context, o *options, dest string, force bool) error {
	cfg, err := o.loadConfig()
	if err != nil {
		return err
	}
	switch cfg.Storage.Driver {
	case "sqlite":
	case "postgres":
		return errors.New("keygate backup copies a SQLite database; this configuration uses PostgreSQL: " +
			"back it up with pg_dump --format=custom (restore with pg_restore), " +
			"and keep the key-encryption key with the dump (see docs/operations.md)")
	default:
		return fmt.Errorf("keygate backup: storage.driver %q has no backup support", cfg.Storage.Driver)
	}
	info, err := sqlite.Backup(ctx, cfg.Storage.DSN, dest, force)
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s already exists; choose another file, or pass --force to replace it", dest)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no database at %s (storage.dsn), nothing to back up: %w", cfg.Storage.DSN, err)
	case err != nil:
		return err
	}
	fmt.Fprintf(o.stdout, "backup: wrote %s (%d bytes, mode 0600) from %s\n", info.Path, info.Size, cfg.Storage.DSN)
	fmt.Fprintf(o.stdout, "schema version %d, key-set version %d, %d keys: %s\n",
		info.SchemaVersion, info.KeySetVersion, len(info.KIDs), strings.Join(info.KIDs, " "))
	fmt.Fprintf(o.stdout, "The key-encryption key is NOT in the backup, and the signing keys in it are sealed under it.\n"+
		"Keep the key (%s) wherever you keep backups, stored separately from them: without it a restore cannot sign.\n", kekSource(cfg))
	return nil
}

// kekSource says where the configuration takes the key-encryption key from.
func kekSource(cfg config.Config) string {
	switch {
	case cfg.KeyEncryptionKey != "":
		return "KEYGATE_KEY_ENCRYPTION_KEY"
	case cfg.Keys.EncryptionKeyFile != "":
		return "keys.encryption_key_file " + cfg.Keys.EncryptionKeyFile
	}
	return "the development key file " + cfg.DevKEKPath()
}
