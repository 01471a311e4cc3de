package config

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The storage DSN is a closed set of forms: a SQLite file path or file: URL
// (driver sqlite), or a postgres:// or postgresql:// URL (driver postgres).
// Anything else with a scheme is refused at load, so that an unsupported URL
// is never taken for a file name.

// schemeRE matches a URL scheme followed by "://".
var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// dsnScheme returns the lower-case scheme of a scheme://... DSN, or "".
func dsnScheme(dsn string) string {
	m := schemeRE.FindStringSubmatch(dsn)
	if m == nil {
		return ""
	}
	return strings.ToLower(m[1])
}

// isPostgresURL reports whether dsn is a postgres:// or postgresql:// URL.
func isPostgresURL(dsn string) bool {
	s := dsnScheme(dsn)
	return s == "postgres" || s == "postgresql"
}

// dsnSetting names where the DSN was set, for messages.
func (c Config) dsnSetting() string {
	if c.dsnFromEnv {
		return "KEYGATE_DATABASE_URL"
	}
	return "storage.dsn"
}

// fileURL turns a SQLite DSN given as a file: URL into the path it names.
func (c *Config) fileURL() error {
	dsn := c.Storage.DSN
	if !strings.HasPrefix(strings.ToLower(dsn), "file:") {
		return nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("%s: %q is not a valid file: URL: %v", c.dsnSetting(), RedactDSN(dsn), errors.Unwrap(err))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: a file: URL gives the database path only, without ?options, got %q", c.dsnSetting(), RedactDSN(dsn))
	}
	if u.Host != "" && u.Host != "localhost" {
		return fmt.Errorf("%s: a file: URL must name a local file (file:///path or file:relative/path), got host %q", c.dsnSetting(), u.Host)
	}
	p := u.Path
	if u.Opaque != "" {
		if p, err = url.PathUnescape(u.Opaque); err != nil {
			return fmt.Errorf("%s: %q: %v", c.dsnSetting(), dsn, err)
		}
	}
	if p == "" {
		return fmt.Errorf("%s: the file: URL names no file", c.dsnSetting())
	}
	c.Storage.DSN = filepath.FromSlash(p)
	return nil
}

// validateStorage checks the driver and that the DSN is one of the forms it
// takes. Messages never include a password.
func (c Config) validateStorage() error {
	dsn, name := c.Storage.DSN, c.dsnSetting()
	scheme := dsnScheme(dsn)
	if scheme != "" && !isPostgresURL(dsn) {
		return fmt.Errorf("%s: unsupported scheme %s:// in %q; use a SQLite file path (or a file: URL) or a postgres:// URL",
			name, scheme, RedactDSN(dsn))
	}
	switch c.Storage.Driver {
	case "sqlite":
		if dsn == "" {
			return fmt.Errorf("%s: the SQLite database path is empty", name)
		}
		if scheme != "" {
			return fmt.Errorf("%s: %q is a PostgreSQL URL but storage.driver is sqlite; set storage.driver to postgres (or unset KEYGATE_STORAGE_DRIVER)",
				name, RedactDSN(dsn))
		}
	case "postgres":
		if _, err := url.Parse(dsn); err != nil || !isPostgresURL(dsn) {
			return fmt.Errorf("%s: a postgres:// URL is required for the postgres driver (or KEYGATE_DATABASE_URL), got %q", name, RedactDSN(dsn))
		}
	default:
		return fmt.Errorf("storage.driver: must be sqlite or postgres, got %q", c.Storage.Driver)
	}
	switch strings.ToLower(c.Storage.Synchronous) {
	case "", "normal", "full":
	default:
		return fmt.Errorf("storage.synchronous: must be normal or full, got %q", c.Storage.Synchronous)
	}
	if c.Storage.Synchronous != "" && c.Storage.Driver != "sqlite" {
		return fmt.Errorf("storage.synchronous: applies to SQLite only (PostgreSQL commits are durable per its synchronous_commit), got %q with storage.driver %s",
			c.Storage.Synchronous, c.Storage.Driver)
	}
	return nil
}

// redacted replaces a secret in a DSN.
const redacted = "xxxxx"

var (
	// queryPasswordRE finds password parameters in a URL's query.
	queryPasswordRE = regexp.MustCompile(`(?i)[?&](?:ssl)?password=([^&#]*)`)
	// kvPasswordRE finds password settings in a key=value connection string.
	kvPasswordRE = regexp.MustCompile(`(?i)\b(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s]*)`)
)

// secretSpans returns the byte ranges of dsn that hold secrets: the password
// of a URL's user information, password query parameters, and password
// settings of a key=value string.
func secretSpans(dsn string) [][2]int {
	var spans [][2]int
	if loc := schemeRE.FindStringIndex(dsn); loc != nil {
		start := loc[1]
		rest := dsn[start:]
		// The last '@' ends the user information even if the password has
		// a raw '/', '?', '#' or '@': over-redacting is better than leaking.
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 && colon+1 < at {
				spans = append(spans, [2]int{start + colon + 1, start + at})
			}
		}
		for _, m := range queryPasswordRE.FindAllStringSubmatchIndex(dsn, -1) {
			if m[3] > m[2] {
				spans = append(spans, [2]int{m[2], m[3]})
			}
		}
		return spans
	}
	for _, m := range kvPasswordRE.FindAllStringSubmatchIndex(dsn, -1) {
		if m[3] > m[2] {
			spans = append(spans, [2]int{m[2], m[3]})
		}
	}
	return spans
}

// RedactDSN returns dsn with every password in it replaced by xxxxx: the
// password of a URL (postgres://user:xxxxx@host/db), password= query
// parameters, and password= settings of a key=value connection string. A
// SQLite path comes back unchanged. Everything that logs a DSN or puts one in
// a message passes it through RedactDSN first.
func RedactDSN(dsn string) string {
	spans := secretSpans(dsn)
	sort.Slice(spans, func(i, j int) bool { return spans[i][0] > spans[j][0] }) // from the end: offsets stay valid
	end := len(dsn)
	for _, s := range spans {
		if s[1] > end { // overlaps the span replaced before: merge
			s[1] = end
		}
		if s[0] < s[1] {
			dsn = dsn[:s[0]] + redacted + dsn[s[1]:]
		}
		end = s[0]
	}
	return dsn
}

// RedactError returns err with dsn's passwords removed from its message (in
// the DSN's own form and percent-decoded), for errors from database drivers
// that may echo the connection string. errors.Is and errors.As still see err.
func RedactError(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), dsn, RedactDSN(dsn))
	for _, s := range secretSpans(dsn) {
		secret := dsn[s[0]:s[1]]
		msg = strings.ReplaceAll(msg, secret, redacted)
		if plain, uerr := url.PathUnescape(secret); uerr == nil && plain != "" {
			msg = strings.ReplaceAll(msg, plain, redacted)
		}
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
