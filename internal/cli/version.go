package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/version"
	"github.com/keygate/keygate/store/postgres"
	"github.com/keygate/keygate/store/sqlite"
)

// addVersion gives root its --version flag and `version` command, both
// printing "keygate VERSION (GO_VERSION, revision REV)" from the build
// information (see internal/version); `version` adds the schema migration
// level this binary brings a database to, per backend, without opening one
// (opening migrates), to compare with /healthz's schema_version.
func addVersion(root *cobra.Command, o *options) {
	root.Version = version.Get().String()
	root.SetVersionTemplate("keygate {{.Version}}\n")
	cmd := &cobra.Command{Use: "version", Args: cobra.NoArgs,
		Short: "Print the version, the Go version and the VCS revision it was built from (as --version does)"}
	cmd.RunE = func(*cobra.Command, []string) error {
		_, err := fmt.Fprintf(o.stdout, "keygate %s\nschema: migration %d (SQLite), %d (PostgreSQL)\n", root.Version,
			sqlite.KnownSchemaVersion(), postgres.KnownSchemaVersion())
		return err
	}
	root.AddCommand(cmd)
}
