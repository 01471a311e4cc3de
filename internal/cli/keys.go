package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keygate/keygate/internal/app"
	"github.com/keygate/keygate/rotation"
)

func newKeysCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List, rotate and revoke signing keys (works while the server runs; it notices within keys.poll_interval)",
	}
	var asJSON bool
	list := noArgs("list", "Print each key's kid, state, and when it was or will be activated, retired and removed",
		withDeps(o, func(cmd *cobra.Command, d *app.Deps, _ []string) error {
			keys, err := rotation.List(cmd.Context(), d.Store(), d.Policy())
			if err != nil {
				return err
			}
			if d.KEKAvailable() {
				if err := d.WarnStaleSealed(cmd.Context()); err != nil {
					return app.Explain(err)
				}
			}
			return printKeys(o, keys, asJSON, time.Now())
		}))
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")

	var force bool
	rotate := noArgs("rotate", "Make the next key the signing key (scheduled instead if it was published less than publish_ahead ago, unless --force)",
		withManager(o, func(cmd *cobra.Command, m *rotation.Manager, _ []string) error {
			res, err := m.Rotate(cmd.Context(), force)
			if err != nil {
				return app.Explain(err)
			}
			if res.Scheduled {
				fmt.Fprintf(o.stdout, "scheduled: %s starts signing at %s (published less than publish_ahead ago; --force to rotate now)\n",
					res.Activated, res.At.UTC().Format(time.RFC3339))
				return nil
			}
			fmt.Fprintf(o.stdout, "rotated: %s now signs; %s retired\n", res.Activated, res.Retired)
			return nil
		}))
	rotate.Flags().BoolVar(&force, "force", false, "rotate now even if consumers may not have fetched the next key yet")

	revoke := &cobra.Command{
		Use:   "revoke [--] KID",
		Short: "Withdraw a key at once: it leaves the JWKS and tokens it signed stop verifying",
		Long: "Withdraw a key at once: it leaves the JWKS and tokens it signed stop verifying.\n" +
			"A kid may begin with '-' (kids are base64url): put -- before it so that it is not read as a flag.",
		Example: "  keygate keys revoke -- -Xb3kQ9...",
		Args:    cobra.ExactArgs(1),
		RunE: withManager(o, func(cmd *cobra.Command, m *rotation.Manager, args []string) error {
			res, err := m.Revoke(cmd.Context(), args[0])
			if err != nil {
				return app.Explain(err)
			}
			fmt.Fprintf(o.stdout, "revoked: %s (was %s)\n", res.KID, res.WasState)
			if res.Activated != "" {
				fmt.Fprintf(o.stdout, "now signing: %s\n", res.Activated)
			}
			return nil
		}),
	}
	revoke.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w (a KID that begins with '-' goes after --: keygate keys revoke -- KID)", err)
	})
	cmd.AddCommand(list, audited(rotate), audited(revoke), audited(newRewrapCmd(o)))
	return cmd
}

// noArgs returns the command use, with the one-line help short, that takes no
// positional arguments (cobra rejects any) and runs run. Callers set Long,
// Example and flags on the result.
func noArgs(use, short string, run func(*cobra.Command, []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: run}
}

// withManager opens the configured store and key manager around a command.
func withManager(o *options, run func(*cobra.Command, *rotation.Manager, []string) error) func(*cobra.Command, []string) error {
	return withDeps(o, func(cmd *cobra.Command, d *app.Deps, args []string) error {
		m, err := d.Manager(nil, nil)
		if err != nil {
			return app.Explain(err)
		}
		return run(cmd, m, args)
	})
}

func printKeys(o *options, keys []rotation.Key, asJSON bool, now time.Time) error {
	views := rotation.ViewKeys(keys)
	if asJSON {
		enc := json.NewEncoder(o.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	}
	tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tSTATE\tBITS\tCREATED\tACTIVATED/ACTIVATES\tRETIRED/RETIRES\tREMOVED/REMOVES")
	for _, v := range views {
		retire := stamp(v.RetireAt, now)
		if v.RevokedAt != nil {
			retire = "revoked " + stamp(*v.RevokedAt, now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.KID, v.State, v.Bits, stamp(v.CreatedAt, now),
			stamp(v.ActivateAt, now), retire, stamp(v.RemoveAt, now))
	}
	return tw.Flush()
}

// stamp prints an instant, marking those still ahead.
func stamp(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	s := t.UTC().Format(time.RFC3339)
	if t.After(now) {
		s += " (in " + t.Sub(now).Round(time.Second).String() + ")"
	}
	return s
}
