package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keygate/keygate/idp"
)

// withProvider opens the store and the provider around a command.
func withProvider(o *options, run func(*cobra.Command, *idp.Provider, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		d, err := o.open(cmd.Context())
		if err != nil {
			return err
		}
		defer d.Close()
		p, err := d.Provider(nil)
		if err != nil {
			return err
		}
		return run(cmd, p, args)
	}
}

func newClientsCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Short: "Register, list and delete OAuth clients"}
	var (
		c                      idp.Client
		keyFile                string
		noSecret               bool
		accessTTL, nbfDelay    time.Duration
		grants, scopes, audien []string
		redirects              []string
	)
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Register a client; prints its secret once",
		Example: `  keygate clients add billing --grant client_credentials --scope read --audience orders
  keygate clients add webapp --public --grant authorization_code,refresh_token \
      --scope openid,profile,email --redirect-uri https://app.example.com/callback
  keygate clients add future-script --grant urn:ietf:params:oauth:grant-type:jwt-bearer --public-key client.pub \
      --no-secret --access-ttl 30s --not-before-delay 10s --allow-bare-assertion
  keygate clients add orders-api --grant client_credentials --introspect`,
		Args: cobra.ExactArgs(1),
		RunE: withProvider(o, func(cmd *cobra.Command, p *idp.Provider, args []string) error {
			c.ID, c.GrantTypes, c.Scopes, c.Audience, c.RedirectURIs = args[0], grants, scopes, audien, redirects
			c.AccessTTL, c.NotBeforeDelay = accessTTL, nbfDelay
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return fmt.Errorf("--public-key: %w", err)
				}
				set, err := idp.ParsePublicKeys(b)
				if err != nil {
					return fmt.Errorf("--public-key %s: %w", keyFile, err)
				}
				c.Keys = set
			}
			secret, err := p.RegisterClient(cmd.Context(), &c, !noSecret)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "client_id:     %s\n", c.ID)
			if secret != "" {
				fmt.Fprintf(o.stdout, "client_secret: %s\n(shown once: only its SHA-256 is stored)\n", secret)
			}
			return nil
		}),
	}
	f := add.Flags()
	f.StringVar(&c.Name, "name", "", "display name")
	f.StringSliceVar(&grants, "grant", []string{idp.GrantClientCredentials}, "allowed grant types (repeat or comma-separate): "+strings.Join(idp.GrantTypes, ", "))
	f.StringSliceVar(&scopes, "scope", nil, "scopes the client may ask for")
	f.StringSliceVar(&audien, "audience", nil, "aud of its access tokens (default: the client id)")
	f.StringSliceVar(&redirects, "redirect-uri", nil, "redirect URIs (browser flow), matched exactly")
	f.StringVar(&keyFile, "public-key", "", "PEM public key or JWK Set file for private_key_jwt and jwt-bearer")
	f.StringVar(&c.JWKSURI, "jwks-uri", "", "URL of the client's JWK Set instead of --public-key")
	f.BoolVar(&c.Public, "public", false, "public client: no secret, no key")
	f.BoolVar(&noSecret, "no-secret", false, "no secret (a key-only client)")
	f.DurationVar(&accessTTL, "access-ttl", 0, "access-token lifetime (default tokens.access_ttl)")
	f.DurationVar(&nbfDelay, "not-before-delay", 0, "its tokens become valid this long after issue (nbf = iat + this), e.g. 10s")
	f.BoolVar(&c.AllowBareAssertion, "allow-bare-assertion", false, "accept a bare client-signed login assertion (iss only, no exp/jti; replayable, so off by default)")
	f.BoolVar(&c.Introspect, "introspect", false, "a resource server: may introspect other clients' tokens at /introspect (others see only their own)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List clients (configuration file and store)",
		Args:  cobra.NoArgs,
		RunE: withProvider(o, func(cmd *cobra.Command, p *idp.Provider, _ []string) error {
			cs, err := p.Clients(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSOURCE\tAUTH\tGRANTS\tSCOPES\tAUDIENCE\tACCESS_TTL\tNOT_BEFORE_DELAY\tINTROSPECT\tREDIRECT_URIS")
			for _, c := range cs {
				src, auth := "store", []string{}
				if c.Static {
					src = "config"
				}
				if len(c.SecretHash) > 0 {
					auth = append(auth, "secret")
				}
				if c.HasKeys() {
					auth = append(auth, "key")
				}
				if c.Public {
					auth = append(auth, "public")
				}
				introspect := "own"
				if c.Introspect {
					introspect = "any"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, src, strings.Join(auth, "+"), strings.Join(c.GrantTypes, ","),
					strings.Join(c.Scopes, ","), strings.Join(c.Audience, ","), c.AccessTTL, c.NotBeforeDelay, introspect, strings.Join(c.RedirectURIs, " "))
			}
			return tw.Flush()
		}),
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a stored client",
		Args:  cobra.ExactArgs(1),
		RunE: withProvider(o, func(cmd *cobra.Command, p *idp.Provider, args []string) error {
			if err := p.DeleteClient(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "deleted client %s\n", args[0])
			return nil
		}),
	}
	cmd.AddCommand(add, list, del, newHashSecretCmd(o))
	return cmd
}

func newUsersCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Add, list and delete users; set passwords"}
	var nu idp.NewUser
	add := &cobra.Command{
		Use:     "add USERNAME",
		Short:   "Add a user; the password is read from the terminal or stdin",
		Example: "  printf '%s\\n' 'correct horse battery staple' | keygate users add alice --email alice@example.com",
		Args:    cobra.ExactArgs(1),
		RunE: withProvider(o, func(cmd *cobra.Command, p *idp.Provider, args []string) error {
			pw, err := readSecret(cmd.InOrStdin(), o.stderr, "Password: ")
			if err != nil {
				return err
			}
			nu.Username, nu.Password = args[0], pw
			u, err := p.CreateUser(cmd.Context(), nu)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "added user %s (id %s)\n", u.Username, u.ID)
			return nil
		}),
	}
	add.Flags().StringVar(&nu.Email, "email", "", "email address (unique)")
	add.Flags().StringVar(&nu.Name, "name", "", "display name")
	add.Flags().BoolVar(&nu.Admin, "admin", false, "may use /admin with a token carrying the admin scope")
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: withProvider(o, func(cmd *cobra.Command, p *idp.Provider, _ []string) error {
			us, err := p.Users(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tNAME\tADMIN\tCREATED")
			for _, u := range us {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", u.ID, u.Username, u.Email, u.Name, u.Admin, u.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		}),
	}
	del := &cobra.Command{
		Use: "delete USERNAME", Short: "Delete a user and their refresh tokens", Args: cobra.ExactArgs(1),
		RunE: withProvider(o, func(cmd *cobra.Command, p *idp.Provider, args []string) error {
			if err := p.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "deleted user %s\n", args[0])
			return nil
		}),
	}
	passwd := &cobra.Command{
		Use: "passwd USERNAME", Short: "Set a user's password (read from the terminal or stdin)", Args: cobra.ExactArgs(1),
		RunE: withProvider(o, func(cmd *cobra.Command, p *idp.Provider, args []string) error {
			pw, err := readSecret(cmd.InOrStdin(), o.stderr, "New password: ")
			if err != nil {
				return err
			}
			if err := p.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "password of %s changed\n", args[0])
			return nil
		}),
	}
	cmd.AddCommand(add, list, del, passwd)
	return cmd
}

// readSecret reads one line without echo from a terminal, or plainly from a pipe.
func readSecret(in io.Reader, prompt io.Writer, label string) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, label)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(label, ": "), err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("read %s from stdin: %w", strings.ToLower(strings.TrimSuffix(label, ": ")), err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
