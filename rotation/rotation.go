// Package rotation owns the life of Keygate's signing keys: it generates RSA keys
// ahead of need, seals their private halves at rest, and moves each key through
// next → active → retired → removed on a schedule driven by an injected clock, so
// that every consumer already holds a key before it signs and still holds it until
// the last token it signed has expired. Manual rotation and emergency revocation go
// through the same compare-and-swap writes as the schedule, which is what lets the
// server, the CLI and (with a shared database) several replicas work on one key set.
package rotation

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/internal/faults"
	"github.com/keygate/keygate/store"
)

// Policy is the schedule. RotationPeriod is how long a key signs; PublishAhead is
// the least time a key is published before it signs (at least twice the JWKS
// max-age, so every cache that honours Cache-Control has fetched it); Retention is
// how long a retired key stays published: the longest token lifetime plus the
// clock-skew leeway, after which no unexpired token can carry its signature.
type Policy struct {
	RotationPeriod time.Duration
	PublishAhead   time.Duration
	Retention      time.Duration
	RSABits        int
	// Algorithms are the signing algorithms to keep key sets for, each
	// rotated on its own through next → active → retired: RS256 (always,
	// the default) and optionally ES256 and EdDSA. Empty means RS256 only.
	Algorithms []string
}

// algorithms returns the configured algorithms, RS256 first.
func (p Policy) algorithms() []string {
	out := []string{Algorithm}
	for _, a := range p.Algorithms {
		if a != Algorithm {
			out = append(out, a)
		}
	}
	return out
}

// Validate reports the first inconsistency in p, naming the setting.
func (p Policy) Validate() error {
	switch {
	case p.RotationPeriod <= 0:
		return fmt.Errorf("rotation_period must be positive, got %s", p.RotationPeriod)
	case p.PublishAhead <= 0:
		return fmt.Errorf("publish_ahead must be positive, got %s", p.PublishAhead)
	case p.PublishAhead > p.RotationPeriod:
		return fmt.Errorf("publish_ahead (%s) must not exceed rotation_period (%s): the next key is generated when the previous one starts signing", p.PublishAhead, p.RotationPeriod)
	case p.Retention <= 0:
		return fmt.Errorf("retention (longest token lifetime + leeway) must be positive, got %s", p.Retention)
	case !ValidRSABits(p.RSABits):
		return fmt.Errorf("rsa_bits must be 2048, 3072 or 4096, got %d", p.RSABits)
	}
	seen := map[string]bool{}
	for _, a := range p.Algorithms {
		switch {
		case !ValidAlgorithm(a):
			return fmt.Errorf("algorithms: %q is not supported (RS256, ES256, EdDSA)", a)
		case seen[a]:
			return fmt.Errorf("algorithms: %q is listed twice", a)
		}
		seen[a] = true
	}
	if len(p.Algorithms) > 0 && !seen[Algorithm] {
		return fmt.Errorf("algorithms must include %s, the default every client can use", Algorithm)
	}
	return nil
}

// Reason says why the signing key changed; it labels the rotations metric.
type Reason string

// The reasons a signing key changes.
const (
	ReasonInitial    Reason = "initial"    // first key of an empty store
	ReasonScheduled  Reason = "scheduled"  // the next key's activation time came
	ReasonManual     Reason = "manual"     // keygate keys rotate, or the admin API
	ReasonRevocation Reason = "revocation" // the active key was revoked
)

// ErrUnknownKID reports a kid that is not in the key set.
var ErrUnknownKID = fmt.Errorf("unknown kid: %w", store.ErrNotFound)

// ErrAlreadyRevoked reports a revocation of a key that is already revoked.
var ErrAlreadyRevoked = errors.New("key is already revoked")

// Config holds what a Manager needs. Now defaults to time.Now and Logger to
// slog.Default(); tests inject a clock so that months of rotations run in
// microseconds.
type Config struct {
	Policy   Policy
	Store    store.KeyStore
	Sealer   *Sealer
	Now      func() time.Time
	Logger   *slog.Logger
	OnChange func(*Snapshot) // called with every newly loaded key set
	OnRotate func(Reason)    // called when this process changed the signing key

	// Generate makes a new RSA private key of the given size; it defaults to
	// rsa.GenerateKey with crypto/rand. Tests inject a slow or blocking one.
	Generate func(bits int) (*rsa.PrivateKey, error)

	// Holder, when set, makes scheduled key-set writes the privilege of one
	// replica at a time: this one, named Holder, while it holds the store's
	// lease (store.KeyStore.AcquireLease) for LeaseTTL. Compare-and-swap
	// writes already keep the set valid under races; the lease keeps N
	// replicas from each generating keys and competing for every transition.
	// Left empty, this process writes whenever a write is due.
	Holder   string
	LeaseTTL time.Duration
}

// Key is the public view of a stored key, with its schedule. For next and active
// keys RetireAt and RemoveAt are projections from the policy; for retired and
// revoked keys they are what happened.
type Key struct {
	KID        string
	Algorithm  string
	State      store.KeyState
	Public     crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
	CreatedAt  time.Time
	ActivateAt time.Time
	RetireAt   time.Time
	RemoveAt   time.Time
	RevokedAt  time.Time
}

// SigningKey is the active key with its private half, ready to sign.
type SigningKey struct {
	KID       string
	Algorithm string
	Private   *rsa.PrivateKey // the RS256 key; nil for the other algorithms
	Signer    crypto.Signer   // the private key, whatever its algorithm
}

// Snapshot is one consistent, immutable view of the key set.
type Snapshot struct {
	Version int64      // the store's key-set version it was read at
	Keys    []Key      // publication order (active, next, retired newest first), then revoked
	Signing SigningKey // the active RS256 key
	// Signers are the active keys by algorithm: Signing under RS256, and
	// one per other configured algorithm whose key set exists.
	Signers  map[string]SigningKey
	LoadedAt time.Time

	doc *lazyDocument // the published keys serialized, on first use (Document)
}

// Published returns the keys a JWKS must carry: every key but the revoked ones,
// active first, then next, then retired newest first. The order is a pure function
// of the stored set, so replicas serve identical bytes.
func (s *Snapshot) Published() []Key {
	out := make([]Key, 0, len(s.Keys))
	for _, k := range s.Keys {
		if k.State != store.KeyRevoked {
			out = append(out, k)
		}
	}
	return out
}

// Find returns the key with kid, if the set holds it.
func (s *Snapshot) Find(kid string) (Key, bool) {
	for _, k := range s.Keys {
		if k.KID == kid {
			return k, true
		}
	}
	return Key{}, false
}

// Manager runs the key lifecycle against a Store.
type Manager struct {
	cfg  Config
	now  func() time.Time
	log  *slog.Logger
	mu   sync.Mutex // one reconcile at a time in this process
	snap atomic.Pointer[Snapshot]
	priv map[string]crypto.Signer    // opened private keys, by kid; guarded by mu
	pub  map[string]crypto.PublicKey // parsed public keys, by kid; guarded by mu

	genMu sync.Mutex
	gen   *generation // the key generation running, if any; guarded by genMu
}

// New checks cfg and returns a Manager. It does not touch the store: call
// Reconcile (or Run) to load or create the key set.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("rotation: Store and Sealer are required")
	}
	if cfg.Holder != "" && cfg.LeaseTTL <= 0 {
		return nil, errors.New("rotation: a lease Holder needs a positive LeaseTTL")
	}
	m := &Manager{cfg: cfg, now: cfg.Now, log: cfg.Logger,
		priv: map[string]crypto.Signer{}, pub: map[string]crypto.PublicKey{}}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.cfg.Generate == nil {
		m.cfg.Generate = generateRSA
	}
	return m, nil
}

// Current returns the last loaded snapshot, or nil before the first Reconcile.
func (m *Manager) Current() *Snapshot { return m.snap.Load() }

// Signing returns the active key. It never touches the store, so signing never
// waits on rotation.
func (m *Manager) Signing() (SigningKey, error) {
	s := m.snap.Load()
	if s == nil {
		return SigningKey{}, errors.New("no signing key loaded yet")
	}
	return s.Signing, nil
}

// Reconcile brings the stored key set up to date with the clock — removes expired
// retired keys, promotes a due next key, creates the active and next keys when
// missing — and loads the result. The stored set is loaded and published (the
// Signer switches to its active key) before any key is generated, and the
// generation runs without holding the Manager, so a concurrent Tick applies
// other processes' changes meanwhile; Reconcile itself returns once the set is
// complete. A wrong key-encryption key is detected before anything is written.
// Safe to call concurrently with other processes doing the same: a lost race
// re-reads and re-decides.
func (m *Manager) Reconcile(ctx context.Context) (*Snapshot, error) {
	return m.settle(ctx, false, true)
}

// settle reconciles and, when a key is missing and this process may write
// it, has it generated off the lock (one generation at a time). With wait it
// returns once the set is complete; without, it returns the published set as
// soon as there is one and leaves the generation running.
func (m *Manager) settle(ctx context.Context, operator, wait bool) (*Snapshot, error) {
	const attempts = 8
	for range attempts {
		m.mu.Lock()
		snap, missing, err := m.reconcile(ctx, operator)
		m.mu.Unlock()
		if err != nil || !missing {
			return snap, err
		}
		g := m.startGeneration(ctx, operator)
		if !wait && snap != nil {
			return snap, nil
		}
		select {
		case <-g.done:
		case <-ctx.Done():
			return snap, ctx.Err()
		}
		if g.err != nil {
			return snap, g.err
		}
	}
	return nil, fmt.Errorf("reconcile key set: still incomplete after %d attempts", attempts)
}

// reconcile applies the writes the clock calls for and publishes the stored
// set; missing reports that a key (the active one when snap is nil, else the
// next one) must be generated and that this process may write it. Operator
// actions (manual rotation, revocation) pass operator=true and write without
// the lease, which keeps the CLI and every replica able to act at once.
// Callers hold m.mu.
func (m *Manager) reconcile(ctx context.Context, operator bool) (snap *Snapshot, missing bool, err error) {
	const attempts = 8
	for range attempts {
		version, keys, err := m.read(ctx)
		if err != nil {
			return nil, false, err
		}
		now := m.now()
		change, reason := m.plan(now, keys)
		active := findAlg(keys, Algorithm, store.KeyActive)
		if change.Empty() && active != nil {
			// Publish what is stored first, so that a missing next key —
			// generated afterwards, off the lock — never delays applying a
			// change nor keeps a retired key signing.
			if snap, err = m.load(version, keys, now); err != nil || m.missingAlg(keys) == "" {
				return snap, false, err
			}
		}
		// A write is due. With a lease (several replicas on one database) only
		// its holder writes; the others keep serving what is stored and pick up
		// the holder's change through the key-set version.
		if held, err := m.holdLease(ctx, now, operator); err != nil {
			return snap, false, err
		} else if !held {
			if active == nil {
				return nil, false, ErrAwaitingLeaseHolder
			}
			if snap == nil {
				snap, err = m.load(version, keys, now)
			}
			return snap, false, err
		}
		if change.Empty() {
			return snap, true, nil
		}
		if err := m.apply(ctx, change); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return snap, false, err
		}
		if reason != "" {
			m.rotated(reason, change)
			faults.Inject("rotation.after-promote")
		}
	}
	return nil, false, fmt.Errorf("reconcile key set: still conflicting after %d attempts", attempts)
}

// generation is one key generation running in the background.
type generation struct {
	done chan struct{} // closed when it has finished
	err  error         // why it failed; read after done
}

// startGeneration generates the missing key in the background, or returns the
// generation already running: at most one at a time per process.
func (m *Manager) startGeneration(ctx context.Context, operator bool) *generation {
	m.genMu.Lock()
	defer m.genMu.Unlock()
	if m.gen != nil {
		return m.gen
	}
	g := &generation{done: make(chan struct{})}
	m.gen = g
	go func() {
		g.err = m.create(ctx, operator)
		if g.err != nil && ctx.Err() == nil {
			m.log.Error("generating a signing key failed; serving the loaded set", "err", g.err)
		}
		m.genMu.Lock()
		m.gen = nil
		m.genMu.Unlock()
		close(g.done)
	}()
	return g
}

// ErrAwaitingLeaseHolder reports an empty key set that another replica holds
// the lease to create: wait and reconcile again.
var ErrAwaitingLeaseHolder = errors.New("no signing key yet: another replica holds the rotation lease and is creating it")

// LeaseName is the lease that guards key-set writes.
const LeaseName = "keygate-rotation"

func (m *Manager) holdLease(ctx context.Context, now time.Time, operator bool) (bool, error) {
	if m.cfg.Holder == "" || operator {
		return true, nil
	}
	ok, err := m.cfg.Store.AcquireLease(ctx, LeaseName, m.cfg.Holder, m.cfg.LeaseTTL, now)
	if err != nil {
		return false, fmt.Errorf("acquire rotation lease: %w", err)
	}
	return ok, nil
}

// read loads the set and proves the key-encryption key opens every stored private
// key before the caller may decide to write anything.
func (m *Manager) read(ctx context.Context) (int64, []store.Key, error) {
	version, err := m.cfg.Store.KeySetVersion(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("read key-set version: %w", err)
	}
	keys, err := m.cfg.Store.ListKeys(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("list keys: %w", err)
	}
	for _, k := range keys {
		if _, ok := m.pub[k.KID]; !ok {
			pub, err := parsePublic(k.KID, k.Algorithm, k.PublicDER)
			if err != nil {
				return 0, nil, err
			}
			m.pub[k.KID] = pub
		}
		if k.State == store.KeyRevoked {
			delete(m.priv, k.KID)
			continue
		}
		if _, ok := m.priv[k.KID]; !ok {
			priv, err := openPrivate(m.cfg.Sealer, k.KID, k.Sealed)
			if err != nil {
				return 0, nil, err
			}
			m.priv[k.KID] = priv
		}
	}
	return version, keys, nil
}

// findAlg returns the key of algorithm alg in state s, if any: each
// algorithm has its own next and active key.
func findAlg(keys []store.Key, alg string, s store.KeyState) *store.Key {
	for i := range keys {
		if keys[i].State == s && keyAlg(keys[i].Algorithm) == alg {
			return &keys[i]
		}
	}
	return nil
}

// keyAlg is a stored key's algorithm; rows from before algorithms were
// configurable are RS256.
func keyAlg(a string) string {
	if a == "" {
		return Algorithm
	}
	return a
}

// missingAlg returns the first configured algorithm lacking an active or a
// next key, or "" when the set is complete.
func (m *Manager) missingAlg(keys []store.Key) string {
	for _, alg := range m.cfg.Policy.algorithms() {
		if findAlg(keys, alg, store.KeyActive) == nil || findAlg(keys, alg, store.KeyNext) == nil {
			return alg
		}
	}
	return ""
}

// plan decides the writes the clock calls for: deletions of keys past their
// retention, and the promotion of a due next key (or of any next key when there is
// no active one, which only a crash between writes can leave behind).
func (m *Manager) plan(now time.Time, keys []store.Key) (store.KeyChange, Reason) {
	var c store.KeyChange
	for _, k := range keys {
		if (k.State == store.KeyRetired || k.State == store.KeyRevoked) && !k.RemoveAfter.IsZero() && !now.Before(k.RemoveAfter) {
			c.Deletes = append(c.Deletes, store.KeyDelete{KID: k.KID, From: k.State})
		}
	}
	var reason Reason
	for _, alg := range m.cfg.Policy.algorithms() {
		active, next := findAlg(keys, alg, store.KeyActive), findAlg(keys, alg, store.KeyNext)
		if next == nil || (active != nil && now.Before(next.ActivateAt)) {
			continue
		}
		c.Updates = append(c.Updates, m.promote(now, active, next)...)
		reason = ReasonScheduled
	}
	return c, reason
}

// promote retires active (if any) and activates next, in the order the store's
// one-active rule needs.
func (m *Manager) promote(now time.Time, active, next *store.Key) []store.KeyUpdate {
	var ups []store.KeyUpdate
	if active != nil {
		a := *active
		a.State, a.RetiredAt, a.RemoveAfter = store.KeyRetired, now, now.Add(m.cfg.Policy.Retention)
		ups = append(ups, store.KeyUpdate{Key: a, From: store.KeyActive})
	}
	n := *next
	n.State, n.ActivateAt = store.KeyActive, now
	return append(ups, store.KeyUpdate{Key: n, From: store.KeyNext})
}

func (m *Manager) revoked(now time.Time, k store.Key) store.KeyUpdate {
	from := k.State
	k.State, k.Sealed, k.RevokedAt, k.RemoveAfter = store.KeyRevoked, nil, now, now.Add(m.cfg.Policy.Retention)
	if k.RetiredAt.IsZero() {
		k.RetiredAt = now
	}
	return store.KeyUpdate{Key: k, From: from}
}

// create generates the missing keys (slow for big RSA keys) without holding
// m.mu, one algorithm at a time, then stores each as the missing active or
// next key of its algorithm and publishes the result. When another process
// filled the gap meanwhile, or this one lost the lease, the key is
// discarded. Signing reads the last loaded snapshot and never waits.
func (m *Manager) create(ctx context.Context, operator bool) error {
	for range 2*len(m.cfg.Policy.algorithms()) + 2 {
		m.mu.Lock()
		_, keys, err := m.read(ctx)
		m.mu.Unlock()
		if err != nil {
			return err
		}
		alg := m.missingAlg(keys)
		if alg == "" {
			return nil
		}
		if stop, err := m.createAlg(ctx, operator, alg); err != nil || stop {
			return err
		}
	}
	return nil
}

// createAlg generates one key of alg and stores it as that algorithm's
// missing active or next key; stop reports that this process must not go on
// (lease lost, set emptied under it).
func (m *Manager) createAlg(ctx context.Context, operator bool, alg string) (stop bool, err error) {
	g, err := generate(m.cfg.Generate, m.cfg.Policy.RSABits, alg, m.cfg.Sealer)
	if err != nil {
		return true, err
	}
	faults.Inject("rotation.after-generate")
	m.mu.Lock()
	defer m.mu.Unlock()
	const attempts = 8
	for range attempts {
		version, keys, err := m.read(ctx)
		if err != nil {
			return true, err
		}
		now := m.now()
		active, next := findAlg(keys, alg, store.KeyActive), findAlg(keys, alg, store.KeyNext)
		if active != nil && next != nil {
			if findAlg(keys, Algorithm, store.KeyActive) != nil {
				_, err = m.load(version, keys, now) // filled by another process
			}
			return false, err
		}
		if held, err := m.holdLease(ctx, now, operator); err != nil || !held {
			if err == nil && findAlg(keys, Algorithm, store.KeyActive) != nil {
				_, err = m.load(version, keys, now)
			}
			return true, err
		}
		k := store.Key{KID: g.kid, Algorithm: alg, PublicDER: g.publicDER, Sealed: g.sealed, CreatedAt: now}
		if active == nil {
			k.State, k.ActivateAt = store.KeyActive, now
		} else {
			k.State = store.KeyNext
			k.ActivateAt = laterOf(active.ActivateAt.Add(m.cfg.Policy.RotationPeriod), now.Add(m.cfg.Policy.PublishAhead))
		}
		if err := m.apply(ctx, store.KeyChange{Inserts: []store.Key{k}}); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return true, err
		}
		m.priv[g.kid] = g.private
		m.pub[g.kid] = g.private.Public()
		if k.State == store.KeyActive {
			m.rotated(ReasonInitial, store.KeyChange{Inserts: []store.Key{k}})
		} else {
			m.log.Info("generated next signing key", "kid", k.KID, "alg", alg, "activates_at", k.ActivateAt.UTC().Format(time.RFC3339))
		}
		if version, keys, err = m.read(ctx); err != nil {
			return true, err
		}
		if findAlg(keys, Algorithm, store.KeyActive) == nil {
			return alg != Algorithm, nil // emptied under us; the next reconcile starts over
		}
		_, err = m.load(version, keys, m.now())
		return false, err
	}
	return true, fmt.Errorf("store generated key: still conflicting after %d attempts", attempts)
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (m *Manager) apply(ctx context.Context, c store.KeyChange) error {
	if err := m.cfg.Store.ApplyKeyChange(ctx, c); err != nil {
		return fmt.Errorf("apply key change: %w", err)
	}
	return nil
}

func (m *Manager) rotated(reason Reason, c store.KeyChange) {
	var kid string
	for _, u := range c.Updates {
		if u.Key.State == store.KeyActive {
			kid = u.Key.KID
		}
	}
	for _, k := range c.Inserts {
		if k.State == store.KeyActive {
			kid = k.KID
		}
	}
	if kid == "" {
		return
	}
	m.log.Info("signing key changed", "reason", string(reason), "kid", kid)
	if m.cfg.OnRotate != nil {
		m.cfg.OnRotate(reason)
	}
}

// load builds and publishes the snapshot for a set that needs no writes.
func (m *Manager) load(version int64, keys []store.Key, now time.Time) (*Snapshot, error) {
	views := describe(keys, m.pub, m.cfg.Policy)
	snap := &Snapshot{Version: version, Keys: views, LoadedAt: now, doc: &lazyDocument{}, Signers: map[string]SigningKey{}}
	for _, alg := range m.cfg.Policy.algorithms() {
		active := findAlg(keys, alg, store.KeyActive)
		if active == nil {
			continue
		}
		sk := SigningKey{KID: active.KID, Algorithm: alg, Signer: m.priv[active.KID]}
		sk.Private, _ = sk.Signer.(*rsa.PrivateKey)
		snap.Signers[alg] = sk
	}
	snap.Signing = snap.Signers[Algorithm]
	for kid := range m.priv { // forget keys that were removed
		if _, ok := snap.Find(kid); !ok {
			delete(m.priv, kid)
			delete(m.pub, kid)
		}
	}
	old := m.snap.Swap(snap)
	if old == nil || old.Version != version || old.Signing.KID != snap.Signing.KID {
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(snap)
		}
	}
	return snap, nil
}

var stateOrder = map[store.KeyState]int{store.KeyActive: 0, store.KeyNext: 1, store.KeyRetired: 2, store.KeyRevoked: 3}

// describe orders keys for publication and projects each one's schedule.
func describe(keys []store.Key, pubs map[string]crypto.PublicKey, p Policy) []Key {
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		next := findAlg(keys, keyAlg(k.Algorithm), store.KeyNext)
		v := Key{KID: k.KID, Algorithm: k.Algorithm, State: k.State, Public: pubs[k.KID],
			CreatedAt: k.CreatedAt, ActivateAt: k.ActivateAt, RetireAt: k.RetiredAt, RemoveAt: k.RemoveAfter, RevokedAt: k.RevokedAt}
		switch k.State {
		case store.KeyActive:
			v.RetireAt = k.ActivateAt.Add(p.RotationPeriod)
			if next != nil {
				v.RetireAt = next.ActivateAt
			}
			v.RemoveAt = v.RetireAt.Add(p.Retention)
		case store.KeyNext:
			v.RetireAt = k.ActivateAt.Add(p.RotationPeriod)
			v.RemoveAt = v.RetireAt.Add(p.Retention)
		}
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if stateOrder[a.State] != stateOrder[b.State] {
			return stateOrder[a.State] < stateOrder[b.State]
		}
		if !a.RetireAt.Equal(b.RetireAt) {
			return a.RetireAt.After(b.RetireAt)
		}
		return a.KID < b.KID
	})
	return out
}

// List returns the stored keys with their schedules without changing anything and
// without opening private keys: what `keygate keys list` prints.
func List(ctx context.Context, st store.KeyStore, p Policy) ([]Key, error) {
	keys, err := st.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	pubs := make(map[string]crypto.PublicKey, len(keys))
	for _, k := range keys {
		pub, err := parsePublic(k.KID, k.Algorithm, k.PublicDER)
		if err != nil {
			return nil, err
		}
		pubs[k.KID] = pub
	}
	return describe(keys, pubs, p), nil
}
