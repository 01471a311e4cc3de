package cli

import (
	"log/slog"
	"os/user"
	"strings"

	"github.com/spf13/cobra"
)

// auditAnnotation marks a command that changes the store: withDeps logs one
// "admin action" line for each run of it.
const auditAnnotation = "keygate.audit"

// ActorCLI is the audit actor of a change made with a keygate command.
const ActorCLI = "cli"

// audited marks cmd as a write to audit, and returns it.
func audited(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[auditAnnotation] = "yes"
	return cmd
}

// auditCommand logs the one audit line of an audited command's run, in the
// same shape as the admin API's (web/audit.go): actor "cli" and the operating
// system user who ran it, the action ("users update"), the target (its
// positional arguments: a client id, a login, a kid, never a secret: those are
// read from stdin), and whether it succeeded. Flags are not logged: their
// names are in the action's documentation and none holds a secret, but a
// value such as --public-key is a file path of no use to an auditor.
func auditCommand(log *slog.Logger, cmd *cobra.Command, args []string, err error) {
	if cmd.Annotations[auditAnnotation] == "" {
		return
	}
	osUser := "unknown"
	if u, uerr := user.Current(); uerr == nil {
		osUser = u.Username
	}
	target := strings.Join(args, ",")
	if target == "" {
		target = "-"
	}
	action := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	attrs := []any{"audit", true, "actor", ActorCLI, "os_user", osUser, "action", action, "target", target}
	if err != nil {
		log.Warn("admin action", append(attrs, "outcome", "refused", "err", err.Error())...)
		return
	}
	log.Info("admin action", append(attrs, "outcome", "ok")...)
}
