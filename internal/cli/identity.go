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
	"github.com/keygate/keygate/internal/app"
)

// withDeps makes a command's RunE that opens the configured database (which
// must exist), hands its Deps to run, and closes them when run returns.
func withDeps(o *options, run func(*cobra.Command, *app.Deps, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		d, err := o.open(cmd.Context())
		if err != nil {
			return err
		}
		defer d.Close()
		err = run(cmd, d, args)
		auditCommand(d.Logger(), cmd, args, err)
		return err
	}
}

// withDirectory opens the store and the directory of clients and users
// around a command.
func withDirectory(o *options, run func(*cobra.Command, *idp.Directory, []string) error) func(*cobra.Command, []string) error {
	return withDeps(o, func(cmd *cobra.Command, d *app.Deps, args []string) error {
		dir, err := d.Directory()
		if err != nil {
			return err
		}
		return run(cmd, dir, args)
	})
}

func newClientsCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "clients", Short: "Register, list, update and delete OAuth clients; rotate their secrets"}
	var (
		c                      idp.Client
		keyFile                string
		noSecret               bool
		accessTTL, nbfDelay    time.Duration
		grants, scopes, audien []string
		redirects, origins     []string
	)
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Register a client; prints its secret once",
		Example: `  keygate clients add billing --grant client_credentials --scope read --audience orders
  keygate clients add webapp --public --grant authorization_code,refresh_token \
      --scope openid,profile,email --redirect-uri https://app.example.com/callback
  keygate clients add spa --public --grant authorization_code,refresh_token --scope openid \
      --redirect-uri https://spa.example.com/callback --allowed-origin https://spa.example.com
  keygate clients add future-script --grant urn:ietf:params:oauth:grant-type:jwt-bearer --public-key client.pub \
      --no-secret --access-ttl 30s --not-before-delay 10s --allow-bare-assertion
  keygate clients add orders-api --grant client_credentials --introspect
  keygate clients add photo-printer --third-party --grant authorization_code,refresh_token \
      --scope openid,profile,offline_access --redirect-uri https://print.example/callback`,
		Args: cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			c.ID, c.GrantTypes, c.Scopes, c.Audience, c.RedirectURIs = args[0], grants, scopes, audien, redirects
			c.AllowedOrigins = origins
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
			secret, err := dir.RegisterClient(cmd.Context(), &c, !noSecret)
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
	f.StringSliceVar(&redirects, "redirect-uri", nil, "redirect URIs (browser flow), matched exactly (a public client's http://127.0.0.1 or [::1] one on any port)")
	f.StringSliceVar(&origins, "allowed-origin", nil, "web origins (https://host[:port]) whose scripts may call /token, /revoke and /userinfo (CORS; default: the redirect URIs' origins)")
	f.StringSliceVar(&c.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "where RP-initiated logout may return the browser (post_logout_redirect_uri), matched exactly")
	f.StringVar(&keyFile, "public-key", "", "PEM public key or JWK Set file for private_key_jwt and jwt-bearer")
	f.StringVar(&c.JWKSURI, "jwks-uri", "", "URL of the client's JWK Set instead of --public-key")
	f.BoolVar(&c.Public, "public", false, "public client: no secret, no key")
	f.BoolVar(&noSecret, "no-secret", false, "no secret (a key-only client)")
	f.DurationVar(&accessTTL, "access-ttl", 0, "access-token lifetime (default tokens.access_ttl)")
	f.DurationVar(&nbfDelay, "not-before-delay", 0, "its tokens become valid this long after issue (nbf = iat + this), e.g. 10s")
	f.BoolVar(&c.AllowBareAssertion, "allow-bare-assertion", false, "accept a bare client-signed login assertion (iss only, no exp/jti; replayable, so off by default)")
	f.BoolVar(&c.Introspect, "introspect", false, "a resource server: may introspect other clients' tokens at /introspect (others see only their own)")
	f.StringVar(&c.SigningAlg, "signing-alg", "", "algorithm its access and ID tokens are signed with: RS256 (default), ES256 or EdDSA (keys.algorithms must list it)")
	f.BoolVar(&c.ThirdParty, "third-party", false, "an app run by someone else: users see a consent page listing its scopes before its first code")
	f.BoolVar(&c.DPoPBoundAccessTokens, "dpop-bound-access-tokens", false, "require a DPoP proof (RFC 9449) on every token request: all its access tokens are bound to its key")

	list := &cobra.Command{
		Use:   "list",
		Short: "List clients (configuration file and store)",
		Args:  cobra.NoArgs,
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, _ []string) error {
			cs, err := dir.Clients(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSOURCE\tAUTH\tGRANTS\tSCOPES\tAUDIENCE\tACCESS_TTL\tNOT_BEFORE_DELAY\tINTROSPECT\tTHIRD_PARTY\tSIGNING_ALG\tDPOP\tREDIRECT_URIS")
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
				if until, ok := dir.SecretGraceActive(c); ok {
					auth = append(auth, "old-secret-until-"+until.Format(time.RFC3339))
				}
				introspect := "own"
				if c.Introspect {
					introspect = "any"
				}
				ttl, ttlDefault := dir.EffectiveAccessTTL(c)
				aud, audDefault := c.EffectiveAudience()
				dpop := "optional"
				if c.DPoPBoundAccessTokens {
					dpop = "required"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\t%s\n", c.ID, src, strings.Join(auth, "+"), strings.Join(c.GrantTypes, ","),
					orNone(strings.Join(c.Scopes, ",")), withDefault(strings.Join(aud, ","), audDefault), withDefault(ttl.String(), ttlDefault),
					c.NotBeforeDelay, introspect, c.ThirdParty, withDefault(c.EffectiveSigningAlg(), c.SigningAlg == ""), dpop, orNone(strings.Join(c.RedirectURIs, " ")))
			}
			return tw.Flush()
		}),
	}
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a stored client",
		Args:  cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			if err := dir.DeleteClient(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "deleted client %s\n", args[0])
			return nil
		}),
	}
	cmd.AddCommand(audited(add), list, audited(newClientUpdateCmd(o)), audited(newRotateSecretCmd(o)), audited(del), newHashSecretCmd(o))
	return cmd
}

// withDefault marks a value that is the provider's default, not the client's own.
func withDefault(v string, def bool) string {
	if def {
		return v + " (default)"
	}
	return v
}

func orNone(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

func newClientUpdateCmd(o *options) *cobra.Command {
	var (
		name                    string
		grants, scopes, audien  []string
		redirects, origins      []string
		postLogout              []string
		accessTTL, nbfDelay     time.Duration
		introspect, noIntro     bool
		thirdParty, firstParty  bool
		dpopBound, dpopOptional bool
		signingAlg              string
		bare, noBare            bool
	)
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a stored client's settings; only the flags given change",
		Example: `  keygate clients update billing --scope read,write --access-ttl 5m
  keygate clients update webapp --redirect-uri https://app.example.com/callback,https://app.example.com/cb2
  keygate clients update orders-api --no-introspect
  keygate clients update spa --allowed-origin https://spa.example.com,http://localhost:5173
  keygate clients update photo-printer --third-party
  keygate clients update spa --dpop-bound-access-tokens
  keygate clients update billing --signing-alg ES256`,
		Args: cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			f := cmd.Flags()
			pt := idp.ClientPatch{Name: ifChanged(f.Changed, "name", &name)}
			for _, l := range []struct {
				flag string
				src  []string
				dst  **[]string
			}{{"grant", grants, &pt.GrantTypes}, {"scope", scopes, &pt.Scopes}, {"audience", audien, &pt.Audience}, {"redirect-uri", redirects, &pt.RedirectURIs},
				{"allowed-origin", origins, &pt.AllowedOrigins},
				{"post-logout-redirect-uri", postLogout, &pt.PostLogoutRedirectURIs}} {
				if f.Changed(l.flag) {
					*l.dst = emptyMeansNone(l.src)
				}
			}
			pt.AccessTTL = ifChanged(f.Changed, "access-ttl", &accessTTL)
			pt.NotBeforeDelay = ifChanged(f.Changed, "not-before-delay", &nbfDelay)
			pt.SigningAlg = ifChanged(f.Changed, "signing-alg", &signingAlg)
			if err := setPairs(f.Changed,
				boolPair{"introspect", introspect, "no-introspect", noIntro, &pt.Introspect},
				boolPair{"third-party", thirdParty, "first-party", firstParty, &pt.ThirdParty},
				boolPair{"dpop-bound-access-tokens", dpopBound, "no-dpop-bound-access-tokens", dpopOptional, &pt.DPoPBoundAccessTokens},
				boolPair{"allow-bare-assertion", bare, "no-allow-bare-assertion", noBare, &pt.AllowBareAssertion},
			); err != nil {
				return err
			}
			c, err := dir.UpdateClient(cmd.Context(), args[0], pt)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "updated client %s\n", c.ID)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "display name")
	f.StringSliceVar(&grants, "grant", nil, "allowed grant types, replacing the current ones: "+strings.Join(idp.GrantTypes, ", "))
	f.StringSliceVar(&scopes, "scope", nil, "scopes the client may ask for, replacing the current ones (\"\" for none)")
	f.StringSliceVar(&audien, "audience", nil, "aud of its access tokens, replacing the current ones (\"\" for the default: the client id)")
	f.StringSliceVar(&redirects, "redirect-uri", nil, "redirect URIs, replacing the current ones (\"\" for none)")
	f.StringSliceVar(&origins, "allowed-origin", nil, "CORS origins, replacing the current ones (\"\" for none: the redirect URIs' origins)")
	f.StringSliceVar(&postLogout, "post-logout-redirect-uri", nil, "post-logout redirect URIs (RP-initiated logout), replacing the current ones (\"\" for none)")
	f.DurationVar(&accessTTL, "access-ttl", 0, "access-token lifetime (0 for tokens.access_ttl)")
	f.DurationVar(&nbfDelay, "not-before-delay", 0, "its tokens become valid this long after issue")
	f.BoolVar(&introspect, "introspect", false, "may introspect other clients' tokens")
	f.BoolVar(&noIntro, "no-introspect", false, "may introspect only its own tokens")
	f.BoolVar(&thirdParty, "third-party", false, "users consent before its first code (a consent page)")
	f.BoolVar(&firstParty, "first-party", false, "no consent page (the default)")
	f.BoolVar(&dpopBound, "dpop-bound-access-tokens", false, "require a DPoP proof (RFC 9449) on every token request")
	f.BoolVar(&dpopOptional, "no-dpop-bound-access-tokens", false, "accept token requests without a DPoP proof (the default)")
	f.StringVar(&signingAlg, "signing-alg", "", "algorithm its tokens are signed with: RS256 (\"\" also means RS256), ES256 or EdDSA (keys.algorithms must list it)")
	f.BoolVar(&bare, "allow-bare-assertion", false, "accept a bare client-signed login assertion (replayable)")
	f.BoolVar(&noBare, "no-allow-bare-assertion", false, "refuse bare login assertions (the default)")
	return cmd
}

// emptyMeansNone turns --flag "" (a list of one empty string) into no values.
func emptyMeansNone(v []string) *[]string {
	out := []string{}
	for _, s := range v {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return &out
}

func newRotateSecretCmd(o *options) *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-secret ID",
		Short: "Give a stored client a new secret; prints it once",
		Long: `Give a stored client a new secret and print it once. The old secret keeps
working for --grace (default 1h, at most 720h), time to deploy the new one;
--grace 0 revokes it at once. Only the latest old secret is kept: rotating
again within the grace period ends the older one.`,
		Example: "  keygate clients rotate-secret billing --grace 24h",
		Args:    cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			secret, c, err := dir.RotateClientSecret(cmd.Context(), args[0], grace)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "client_id:     %s\nclient_secret: %s\n(shown once: only its SHA-256 is stored)\n", c.ID, secret)
			if until, ok := dir.SecretGraceActive(c); ok {
				fmt.Fprintf(o.stdout, "the old secret works until %s\n", until.Format(time.RFC3339))
			} else {
				fmt.Fprintln(o.stdout, "the old secret no longer works")
			}
			return nil
		}),
	}
	cmd.Flags().DurationVar(&grace, "grace", idp.DefaultSecretGrace, "how long the old secret keeps working (0: revoke at once)")
	return cmd
}

func newUsersCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Add, list, update (disable) and delete users; set passwords"}
	var nu idp.NewUser
	add := &cobra.Command{
		Use:     "add USERNAME",
		Short:   "Add a user; the password is read from the terminal or stdin",
		Example: "  printf '%s\\n' 'correct horse battery staple' | keygate users add alice --email alice@example.com",
		Args:    cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			pw, err := readSecret(cmd.InOrStdin(), o.stderr, "Password: ")
			if err != nil {
				return err
			}
			nu.Username, nu.Password = args[0], pw
			u, err := dir.CreateUser(cmd.Context(), nu)
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
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, _ []string) error {
			us, err := dir.Users(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSERNAME\tEMAIL\tNAME\tADMIN\tDISABLED\tCREATED")
			for _, u := range us {
				disabled := "no"
				if u.Disabled() {
					disabled = u.DisabledAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\n", u.ID, u.Username, orNone(u.Email), orNone(u.Name), u.Admin, disabled,
					u.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		}),
	}
	del := &cobra.Command{
		Use: "delete USERNAME", Short: "Delete a user and their refresh tokens", Args: cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			if err := dir.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "deleted user %s\n", args[0])
			return nil
		}),
	}
	passwd := &cobra.Command{
		Use: "passwd USERNAME", Short: "Set a user's password (read from the terminal or stdin)", Args: cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			pw, err := readSecret(cmd.InOrStdin(), o.stderr, "New password: ")
			if err != nil {
				return err
			}
			if err := dir.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			fmt.Fprintf(o.stdout, "password of %s changed\n", args[0])
			return nil
		}),
	}
	resetMFA := &cobra.Command{
		Use:   "reset-mfa LOGIN",
		Short: "Remove a user's second factor (TOTP and recovery codes), for a user who lost their device",
		Args:  cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			had, err := dir.ResetSecondFactor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !had {
				fmt.Fprintf(o.stdout, "%s has no second factor\n", args[0])
				return nil
			}
			fmt.Fprintf(o.stdout, "second factor of %s removed; they sign in with their password and may enrol again\n", args[0])
			return nil
		}),
	}
	cmd.AddCommand(audited(add), list, audited(newUserUpdateCmd(o)), audited(del), audited(passwd), audited(resetMFA))
	return cmd
}

func newUserUpdateCmd(o *options) *cobra.Command {
	var (
		email, name                     string
		admin, noAdmin, disable, enable bool
	)
	cmd := &cobra.Command{
		Use:   "update LOGIN",
		Short: "Change a user's email, name, admin flag, or disable/enable them; only the flags given change",
		Long: `Change a user (named by username or email); only the flags given change.

--disable stops every login (password grant, login form, refresh tokens),
revokes the user's refresh tokens and ends their browser sessions. An access
token issued before stays valid until it expires (tokens.access_ttl or the
client's access_ttl): it is a self-contained JWT. --enable lets them log in
again.`,
		Example: `  keygate users update alice --name "Alice Liddell" --email alice@example.org
  keygate users update alice --disable`,
		Args: cobra.ExactArgs(1),
		RunE: withDirectory(o, func(cmd *cobra.Command, dir *idp.Directory, args []string) error {
			f := cmd.Flags()
			pt := idp.UserPatch{Email: ifChanged(f.Changed, "email", &email), Name: ifChanged(f.Changed, "name", &name)}
			if err := setPairs(f.Changed,
				boolPair{"admin", admin, "no-admin", noAdmin, &pt.Admin},
				boolPair{"disable", disable, "enable", enable, &pt.Disabled},
			); err != nil {
				return err
			}
			u, err := dir.UpdateUser(cmd.Context(), args[0], pt)
			if err != nil {
				return err
			}
			state := "enabled"
			if u.Disabled() {
				state = "disabled since " + u.DisabledAt.UTC().Format(time.RFC3339) + "; refresh tokens revoked, sessions ended"
			}
			fmt.Fprintf(o.stdout, "updated user %s (%s)\n", u.Username, state)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "email address (unique; \"\" for none)")
	f.StringVar(&name, "name", "", "display name")
	f.BoolVar(&admin, "admin", false, "may use /admin with a token carrying the admin scope")
	f.BoolVar(&noAdmin, "no-admin", false, "may not use /admin")
	f.BoolVar(&disable, "disable", false, "refuse every login, revoke refresh tokens, end sessions")
	f.BoolVar(&enable, "enable", false, "allow logins again")
	return cmd
}

// ifChanged returns v if the flag name was given, else nil: a nil patch field
// leaves the stored value as it is.
func ifChanged[T any](changed func(string) bool, name string, v *T) *T {
	if changed(name) {
		return v
	}
	return nil
}

// boolPair is one --yes/--no pair of flags (with their parsed values) and the
// patch field it sets.
type boolPair struct {
	yes  string
	yesV bool
	no   string
	noV  bool
	dst  **bool
}

// setPairs sets each pair's field with flagPair, stopping at the first pair
// given both ways.
func setPairs(changed func(string) bool, pairs ...boolPair) error {
	for _, p := range pairs {
		v, err := flagPair(changed, p.yes, p.yesV, p.no, p.noV)
		if err != nil {
			return err
		}
		*p.dst = v
	}
	return nil
}

// flagPair turns a --x/--no-x pair into nil (neither given), true or false.
func flagPair(changed func(string) bool, yes string, yesV bool, no string, noV bool) (*bool, error) {
	switch {
	case changed(yes) && changed(no):
		return nil, fmt.Errorf("--%s and --%s contradict each other", yes, no)
	case changed(yes):
		return &yesV, nil
	case changed(no):
		v := !noV
		return &v, nil
	}
	return nil, nil
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
