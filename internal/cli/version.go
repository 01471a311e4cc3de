package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/version"
)

// addVersion gives root its --version flag and `version` command, both
// printing "keygate VERSION (GO_VERSION, revision REV)" from the build
// information (see internal/version).
func addVersion(root *cobra.Command, o *options) {
	root.Version = version.Get().String()
	root.SetVersionTemplate("keygate {{.Version}}\n")
	cmd := &cobra.Command{Use: "version", Args: cobra.NoArgs,
		Short: "Print the version, the Go version and the VCS revision it was built from (as --version does)"}
	cmd.RunE = func(*cobra.Command, []string) error {
		_, err := fmt.Fprintf(o.stdout, "keygate %s\n", root.Version)
		return err
	}
	root.AddCommand(cmd)
}
