package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/app"
)

// newInitCmd is `keygate init`: create the database, its schema and the first
// keys, then exit. Only init and serve create a database; every other command
// refuses to run without one.
func newInitCmd(o *options) *cobra.Command {
	cmd := noArgs("init", "Create the database, its schema and the first signing keys, then exit (serve does the same on first start)",
		func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(cfg, o.stderr)
			logConfig(log, cfg)
			res, err := app.Init(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if !res.Created {
				fmt.Fprintf(o.stdout, "a Keygate database already exists at %s; nothing changed\n", res.Database)
				return nil
			}
			fmt.Fprintf(o.stdout, "created a Keygate database at %s; signing key %s\n", res.Database, res.ActiveKID)
			return nil
		})
	cmd.Long = "Create the database the configuration names (storage.dsn / KEYGATE_DATABASE_URL), its schema and the\n" +
		"first signing keys, then exit. On an existing database it changes nothing and says so."
	return cmd
}
