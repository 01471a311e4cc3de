package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/store"
)

// DirectoryConfig holds the directory's settings and dependencies: what
// managing clients and users needs, and no more.
type DirectoryConfig struct {
	AccessTTL    time.Duration // default access-token lifetime
	MaxAccessTTL time.Duration // ceiling for per-client lifetimes
	Clients      []Client      // static clients from the configuration file
	// SigningAlgs are the configured signing algorithms (keys.algorithms),
	// which a client's SigningAlg must be among; nil: not restricted.
	SigningAlgs []string

	// ClientCacheSize caps the stored clients kept in memory (0: 4096,
	// negative: no cache); ClientCheckInterval is how often, at most, the
	// store's clients version is read to notice other processes' writes
	// (0: 1 s), which bounds how long they go unseen (clientcache.go).
	ClientCacheSize     int
	ClientCheckInterval time.Duration

	Store  store.Store
	Hasher *password.Hasher
	Now    func() time.Time
	Logger *slog.Logger
}

// Directory manages the registered clients (static and stored) and the
// users: their registration, settings, secrets and passwords. It signs and
// authenticates nothing; a Provider uses one to find clients, and the CLI
// builds one alone to manage them.
type Directory struct {
	cfg    DirectoryConfig
	now    func() time.Time
	log    *slog.Logger
	static map[string]*Client
	cache  *clientCache // nil: read the store on every lookup
}

// NewDirectory checks cfg, and the static clients in it with ValidateClient,
// and returns a Directory. A MaxAccessTTL below AccessTTL is raised to it.
func NewDirectory(cfg DirectoryConfig) (*Directory, error) {
	if cfg.Store == nil || cfg.Hasher == nil {
		return nil, errors.New("idp: Store and Hasher are required")
	}
	if cfg.AccessTTL <= 0 {
		return nil, errors.New("idp: AccessTTL is required")
	}
	if cfg.MaxAccessTTL < cfg.AccessTTL {
		cfg.MaxAccessTTL = cfg.AccessTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Directory{cfg: cfg, now: cfg.Now, log: cfg.Logger, static: map[string]*Client{}}
	if v, ok := cfg.Store.(clientsVersioner); ok && cfg.ClientCacheSize >= 0 {
		d.cache = newClientCache(v, cfg.ClientCacheSize, cfg.ClientCheckInterval)
	}
	for i := range cfg.Clients {
		c := cfg.Clients[i]
		c.Static = true
		if err := ValidateClient(&c, d.clientLimits()); err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		d.static[c.ID] = &c
	}
	return d, nil
}

// endUserSessions logs a user out everywhere (password change, deletion).
func (d *Directory) endUserSessions(ctx context.Context, userID string) error {
	_, err := d.cfg.Store.DeleteUserSessions(ctx, userID)
	return err
}

// SecondFactorState is what a user has enrolled, as operators see it (the
// admin API): never a secret, only whether and how many.
type SecondFactorState struct {
	TOTP              bool `json:"totp"`                // a confirmed TOTP authenticator
	RecoveryCodesLeft int  `json:"recovery_codes_left"` // unused recovery codes
	Passkeys          int  `json:"passkeys"`            // registered passkeys
}

// SecondFactorState reads what second factors the user userID has enrolled.
// SecondFactorStates is SecondFactorState of every user who has a TOTP or
// a passkey (users absent from the map have neither), read in two queries
// rather than two per user: what a listing of all users shows.
func (d *Directory) SecondFactorStates(ctx context.Context) (map[string]SecondFactorState, error) {
	totps, err := d.cfg.Store.ListTOTP(ctx)
	if err != nil {
		return nil, fmt.Errorf("list second factors: %w", err)
	}
	counts, err := d.cfg.Store.CountPasskeysByUser(ctx)
	if err != nil {
		return nil, fmt.Errorf("count passkeys: %w", err)
	}
	out := make(map[string]SecondFactorState, len(totps)+len(counts))
	for _, t := range totps {
		out[t.UserID] = SecondFactorState{TOTP: t.Confirmed(), RecoveryCodesLeft: t.RecoveryLeft}
	}
	for id, n := range counts {
		st := out[id]
		st.Passkeys = n
		out[id] = st
	}
	return out, nil
}

func (d *Directory) SecondFactorState(ctx context.Context, userID string) (SecondFactorState, error) {
	var st SecondFactorState
	t, err := d.cfg.Store.GetTOTP(ctx, userID)
	switch {
	case err == nil:
		st.TOTP, st.RecoveryCodesLeft = t.Confirmed(), t.RecoveryLeft
	case !errors.Is(err, store.ErrNotFound):
		return st, fmt.Errorf("read second factor of user %s: %w", userID, err)
	}
	pks, err := d.cfg.Store.ListUserPasskeys(ctx, userID)
	if err != nil {
		return st, fmt.Errorf("read passkeys of user %s: %w", userID, err)
	}
	st.Passkeys = len(pks)
	return st, nil
}
