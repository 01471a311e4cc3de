package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/keygate/keygate/config"
	"github.com/keygate/keygate/idp"
	"github.com/keygate/keygate/password"
	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/postgres"
	"github.com/keygate/keygate/store/sqlite"
	"github.com/keygate/keygate/throttle"
)

// backend is a storage driver built into the binary.
type backend struct {
	// open opens the database at dsn; with create, it creates the database
	// and its schema if missing, else it fails with an error that
	// noDatabase recognises and creates nothing.
	open func(ctx context.Context, cfg config.Storage, create bool) (store.Store, error)
	// replicas says whether several servers may share one database, which
	// makes scheduled key rotation wait for the store's lease (one writer
	// at a time). A SQLite file serves one server, whose writes nobody
	// needs to wait for.
	replicas bool
}

// backends maps storage.driver to its backend.
var backends = map[string]backend{
	"sqlite": {open: func(ctx context.Context, cfg config.Storage, create bool) (store.Store, error) {
		var opts []sqlite.Option
		if cfg.SynchronousFull() {
			opts = append(opts, sqlite.SynchronousFull())
		}
		if create {
			return sqlite.Open(ctx, cfg.DSN, opts...)
		}
		return sqlite.OpenExisting(ctx, cfg.DSN, opts...)
	}},
	"postgres": {open: func(ctx context.Context, cfg config.Storage, create bool) (store.Store, error) {
		if create {
			return postgres.Open(ctx, cfg.DSN)
		}
		return postgres.OpenExisting(ctx, cfg.DSN)
	}, replicas: true},
}

// ErrNoDatabase reports that OpenDeps found no Keygate database where the
// configuration points; nothing was created.
var ErrNoDatabase = errors.New("no Keygate database")

// noDatabase reports whether a backend's open failed for want of a database.
func noDatabase(err error) bool {
	return errors.Is(err, sqlite.ErrNoDatabase) || errors.Is(err, postgres.ErrNoDatabase)
}

// Deps are the parts every command builds from the configuration: the open
// store, and from it the key manager and the identity provider on demand.
type Deps struct {
	cfg     config.Config
	log     *slog.Logger
	store   store.Store
	shared  bool                                                      // several replicas may use store (backend.replicas)
	pruners []func(ctx context.Context, now time.Time) (int64, error) // shared throttles' housekeeping
	sealer  *rotation.Sealer                                          // loaded once by Sealer
}

// OpenDeps opens the configured store, which must exist: a SQLite file with
// Keygate's schema, or a PostgreSQL schema with Keygate's tables. Otherwise it
// fails with an error wrapping ErrNoDatabase that says where it looked, and
// creates nothing, so that a command run in the wrong directory (or with the
// wrong DSN) does not start a new installation. Close it when done.
func OpenDeps(ctx context.Context, cfg config.Config, log *slog.Logger) (*Deps, error) {
	return openDeps(ctx, cfg, log, false)
}

// CreateDeps opens the configured store as OpenDeps does, creating the
// database and its schema if missing: for serve and init only.
func CreateDeps(ctx context.Context, cfg config.Config, log *slog.Logger) (*Deps, error) {
	return openDeps(ctx, cfg, log, true)
}

func openDeps(ctx context.Context, cfg config.Config, log *slog.Logger, create bool) (*Deps, error) {
	b, ok := backends[cfg.Storage.Driver]
	if !ok {
		return nil, fmt.Errorf("storage.driver %q is not built into this binary", cfg.Storage.Driver)
	}
	st, err := b.open(ctx, cfg.Storage, create)
	if noDatabase(err) {
		return nil, fmt.Errorf("%w at %s (run where config.yaml is, or pass --config / KEYGATE_CONFIG); "+
			"to start a new installation there, run `keygate init`", ErrNoDatabase, describeDatabase(cfg))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", cfg.Storage.Driver, config.RedactError(err, cfg.Storage.DSN))
	}
	return &Deps{cfg: cfg, log: log, store: st, shared: b.replicas}, nil
}

// describeDatabase says where the configured database is, for messages: the
// absolute path of a SQLite file, or the DSN without its password.
func describeDatabase(cfg config.Config) string {
	if cfg.Storage.Driver == "sqlite" {
		if abs, err := filepath.Abs(cfg.Storage.DSN); err == nil {
			return abs
		}
	}
	return config.RedactDSN(cfg.Storage.DSN)
}

// Store is the open store.
func (d *Deps) Store() store.Store { return d.store }

// Logger is the logger the configuration asked for (log.level, log.format),
// which commands use for their audit lines.
func (d *Deps) Logger() *slog.Logger { return d.log }

// Close closes the store.
func (d *Deps) Close() error { return d.store.Close() }

// Policy is the configured key rotation policy.
func (d *Deps) Policy() rotation.Policy {
	return rotation.Policy{RotationPeriod: d.cfg.Keys.RotationPeriod, PublishAhead: d.cfg.Keys.PublishAhead,
		Retention: d.cfg.Retention(), RSABits: d.cfg.Keys.RSABits, Algorithms: d.cfg.SigningAlgorithms()}
}

// Manager builds the key lifecycle manager, loading the key-encryption key.
func (d *Deps) Manager(onChange func(*rotation.Snapshot), onRotate func(rotation.Reason)) (*rotation.Manager, error) {
	sealer, err := d.Sealer()
	if err != nil {
		return nil, err
	}
	rc := rotation.Config{Policy: d.Policy(), Store: d.store, Sealer: sealer, Logger: d.log,
		OnChange: onChange, OnRotate: onRotate}
	if d.shared {
		// Several replicas share this database: one at a time makes key-set writes.
		host, _ := os.Hostname()
		rc.Holder, rc.LeaseTTL = fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano()), d.cfg.Keys.LeaseTTL
	}
	return rotation.New(rc)
}

// staticClients converts the clients declared in the configuration file,
// reading their key files; config.Load has validated them with
// idp.ValidateClient, and idp.NewDirectory checks them again.
func staticClients(cfg config.Config) ([]idp.Client, error) {
	out := make([]idp.Client, 0, len(cfg.Clients))
	for _, cc := range cfg.Clients {
		c, err := cc.IDPClient()
		if err != nil {
			return nil, fmt.Errorf("clients %q: %w", cc.ID, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// directoryConfig is the directory's part of the configuration: token
// lifetimes, static clients, the store and the password hasher.
func (d *Deps) directoryConfig() (idp.DirectoryConfig, error) {
	clients, err := staticClients(d.cfg)
	if err != nil {
		return idp.DirectoryConfig{}, err
	}
	return idp.DirectoryConfig{AccessTTL: d.cfg.Tokens.AccessTTL, MaxAccessTTL: d.cfg.Tokens.MaxAccessTTL,
		Clients: clients, Store: d.store, Logger: d.log, SigningAlgs: d.cfg.SigningAlgorithms(),
		Hasher: password.NewHasher(password.DefaultParams(), d.cfg.Login.HashConcurrency())}, nil
}

// Directory builds the directory of clients and users over the deps' store,
// for the commands that manage them and sign nothing.
func (d *Deps) Directory() (*idp.Directory, error) {
	dc, err := d.directoryConfig()
	if err != nil {
		return nil, err
	}
	return idp.NewDirectory(dc)
}

// Provider builds the identity provider, and its directory, over the deps'
// store, signing with signer.
func (d *Deps) Provider(signer idp.Signer) (*idp.Provider, error) {
	dc, err := d.directoryConfig()
	if err != nil {
		return nil, err
	}
	l := d.cfg.Login
	sealer, err := d.Sealer()
	if err != nil {
		return nil, err
	}
	dpop := idp.DPoPConfig{NonceLifetime: d.cfg.Server.DPoPNonceLifetime}
	if d.cfg.Server.DPoPNonce {
		if dpop.NonceSecret, err = sealer.DerivedSecret("keygate dpop nonce"); err != nil {
			return nil, err
		}
	}
	return idp.New(idp.Config{DirectoryConfig: dc, DPoP: dpop,
		Sealer: sealer, SecondFactor: idp.SecondFactorPolicy(l.RequireSecondFactor),
		PasswordGrantWithSecondFactor: l.PasswordGrantWithSecondFactor,
		Issuer:                        d.cfg.Issuer, RefreshTTL: d.cfg.Tokens.RefreshTTL, Leeway: d.cfg.Tokens.Leeway, Signup: d.cfg.Signup.Enabled,
		IDTokenTTL: d.cfg.Tokens.IDTokenTTL, Signer: signer,
		SessionIdleTimeout: d.cfg.Sessions.IdleTimeout, SessionAbsoluteTimeout: d.cfg.Sessions.AbsoluteTimeout,
		UserThrottle:   d.throttle("user", throttle.Limits{Burst: l.UserBurst, Every: l.UserEvery}),
		IPThrottle:     d.throttle("ip", throttle.Limits{Burst: l.IPBurst, Every: l.IPEvery}),
		PasskeySignIns: throttle.Limits{Burst: l.PasskeyBurst, Every: l.PasskeyEvery},
	})
}

// throttle returns the store's login throttle called name (shared by every
// replica where the backend has replicas) and registers its housekeeping.
func (d *Deps) throttle(name string, l throttle.Limits) store.Throttle {
	t := d.store.Throttle(name, store.ThrottleLimits(l))
	d.pruners = append(d.pruners, t.PruneFull)
	return t
}

// Explain turns a start-up error into advice where we know what went wrong.
func Explain(err error) error {
	if errors.Is(err, rotation.ErrWrongKEK) {
		return fmt.Errorf("%w\nThe stored keys were not changed. Start keygate with the key-encryption key they were sealed with", err)
	}
	return err
}

// Sealer loads the key-encryption keyring (current key first) the configuration
// names. It never creates a development key file when the store already holds
// sealed keys: they would not open under a new one.
func (d *Deps) Sealer() (*rotation.Sealer, error) {
	if d.sealer != nil {
		return d.sealer, nil
	}
	keys, err := rotation.LoadKEK(rotation.KEKSource{Value: d.cfg.KeyEncryptionKey, File: d.cfg.Keys.EncryptionKeyFile,
		DevDefault: d.cfg.DevKEKPath(), SealedKeysExist: d.sealedKeysExist}, d.log)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, k := range keys {
			clear(k)
		}
	}()
	if len(keys) > 1 {
		d.log.Info("key-encryption keyring: the first key seals, the others only open; drop them once `keygate keys rewrap` has run",
			"sealing_kek", rotation.KEKID(keys[0]), "keys", len(keys))
	}
	if d.sealer, err = rotation.NewKeyring(keys); err != nil {
		return nil, err
	}
	return d.sealer, nil
}

// KEKAvailable reports whether a key-encryption key is at hand without
// creating one: configured, or the development key file exists. `keys list`
// checks sealed secrets only then, so listing never needs, or makes, a key.
func (d *Deps) KEKAvailable() bool {
	if d.cfg.KeyEncryptionKey != "" || d.cfg.Keys.EncryptionKeyFile != "" {
		return true
	}
	_, err := os.Stat(d.cfg.DevKEKPath())
	return err == nil
}

// WarnStaleSealed logs a warning, naming how many, when any stored secret (a
// signing key's private half or a TOTP secret) is sealed under a
// key-encryption key other than the first of the keyring: dropping the older
// key would then lock those out, so the operator must run `keygate keys
// rewrap` first. It reads headers only (nothing is opened). serve and
// `keys list` call it.
func (d *Deps) WarnStaleSealed(ctx context.Context) error {
	sealer, err := d.Sealer()
	if err != nil {
		return err
	}
	keys, err := d.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list keys: %w", err)
	}
	staleKeys := 0
	for _, k := range keys {
		if len(k.Sealed) > 0 && !sealer.UnderCurrent(k.Sealed) {
			staleKeys++
		}
	}
	secrets, err := d.store.ListSealedTOTP(ctx)
	if err != nil {
		return fmt.Errorf("list TOTP secrets: %w", err)
	}
	staleTOTP := 0
	for _, sealed := range secrets {
		if !sealer.UnderCurrent(sealed) {
			staleTOTP++
		}
	}
	if staleKeys+staleTOTP > 0 {
		d.log.Warn("some stored secrets are sealed under an older key-encryption key: run `keygate keys rewrap` "+
			"before removing it from the keyring", "signing_keys", staleKeys, "totp_secrets", staleTOTP,
			"sealing_kek", sealer.CurrentID())
	}
	return nil
}

// sealedKeysExist reports whether the store holds any sealed private key.
func (d *Deps) sealedKeysExist() (bool, error) {
	keys, err := d.store.ListKeys(context.Background())
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if len(k.Sealed) > 0 {
			return true, nil
		}
	}
	return false, nil
}
