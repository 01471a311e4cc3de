package rotation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keygate/keygate/internal/faults"
	"github.com/keygate/keygate/store"
)

// RotateResult says what a manual rotation did.
type RotateResult struct {
	// Activated is the kid that signs (or will sign) after the rotation.
	Activated string
	// Retired is the kid that stopped signing; empty when the rotation was only
	// scheduled.
	Retired string
	// At is when Activated started (or will start) signing.
	At time.Time
	// Scheduled is true when the next key had not yet been published for
	// PublishAhead, so its activation was brought forward to the earliest safe
	// instant instead of happening now.
	Scheduled bool
}

// Rotate makes the next key the signing key. A next key published at least
// PublishAhead ago is activated at once; a younger one is scheduled for the
// instant it has been published that long, because consumers that cache the JWKS
// may not have it yet. force activates it at once regardless — for emergencies,
// at the price of consumers refetching the set on the unknown kid.
func (m *Manager) Rotate(ctx context.Context, force bool) (RotateResult, error) {
	return operate(ctx, m, "rotate", func() (RotateResult, bool, error) {
		// A complete set first: a missing next key is generated off the lock.
		if _, err := m.settle(ctx, true, true); err != nil {
			return RotateResult{}, false, err
		}
		return m.rotateOnce(ctx, force)
	})
}

// operate runs an operator action until it is done (the set did not change
// under it), then completes the set: the action has already published its
// result, so this process signs with the right key while the missing next
// key is generated, off the lock.
func operate[R any](ctx context.Context, m *Manager, what string, once func() (R, bool, error)) (R, error) {
	var zero R
	for range 8 {
		res, done, err := once()
		if err != nil {
			return zero, err
		}
		if done {
			_, err = m.settle(ctx, true, true)
			return res, err
		}
	}
	return zero, fmt.Errorf("%s: the key set kept changing; try again", what)
}

// rotateOnce promotes (or schedules) the next key and publishes the result, so
// this process stops signing with the retired key at once; done is false when
// the set changed under it.
func (m *Manager) rotateOnce(ctx context.Context, force bool) (res RotateResult, done bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, keys, err := m.read(ctx)
	if err != nil {
		return RotateResult{}, false, err
	}
	// Every configured algorithm rotates; the result reports RS256's keys.
	now := m.now()
	var change store.KeyChange
	var scheduled []*store.Key
	for i, alg := range m.cfg.Policy.algorithms() {
		active, next := findAlg(keys, alg, store.KeyActive), findAlg(keys, alg, store.KeyNext)
		if active == nil || next == nil {
			if i == 0 {
				return RotateResult{}, false, nil
			}
			continue
		}
		safe := next.CreatedAt.Add(m.cfg.Policy.PublishAhead)
		if !force && now.Before(safe) {
			if i == 0 {
				res = RotateResult{Activated: next.KID, At: safe, Scheduled: true}
			}
			if !next.ActivateAt.After(safe) {
				continue
			}
			n := *next
			n.ActivateAt = safe
			change.Updates = append(change.Updates, store.KeyUpdate{Key: n, From: store.KeyNext})
			scheduled = append(scheduled, &n)
		} else {
			if i == 0 {
				res = RotateResult{Activated: next.KID, Retired: active.KID, At: now}
			}
			change.Updates = append(change.Updates, m.promote(now, active, next)...)
		}
	}
	if change.Empty() {
		return res, true, nil
	}
	err = m.apply(ctx, change)
	if errors.Is(err, store.ErrConflict) {
		return RotateResult{}, false, nil
	}
	if err != nil {
		return RotateResult{}, false, err
	}
	for _, n := range scheduled {
		m.log.Info("manual rotation scheduled", "kid", n.KID, "alg", n.Algorithm, "activates_at", n.ActivateAt.UTC().Format(time.RFC3339))
	}
	if len(scheduled) < len(change.Updates) {
		m.rotated(ReasonManual, change)
		faults.Inject("rotation.after-promote")
	}
	_, _, err = m.reconcile(ctx, true)
	return res, true, err
}

// RevokeResult says what a revocation did.
type RevokeResult struct {
	KID       string
	WasState  store.KeyState
	Activated string // the key that took over signing, when the active key was revoked
}

// Revoke withdraws kid at once: it leaves the published set, its private half is
// erased, and tokens it signed stop verifying as soon as consumers refresh. If it
// was the active key, the next key (or, failing one, a freshly generated key)
// starts signing immediately, and a new next key is generated.
func (m *Manager) Revoke(ctx context.Context, kid string) (RevokeResult, error) {
	return operate(ctx, m, "revoke", func() (RevokeResult, bool, error) { return m.revokeOnce(ctx, kid) })
}

// revokeOnce revokes kid and publishes the result, so this process stops
// signing with it at once; done is false when the set changed under it.
func (m *Manager) revokeOnce(ctx context.Context, kid string) (res RevokeResult, done bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, keys, err := m.read(ctx)
	if err != nil {
		return RevokeResult{}, false, err
	}
	var k *store.Key
	for i := range keys {
		if keys[i].KID == kid {
			k = &keys[i]
		}
	}
	if k == nil {
		return RevokeResult{}, false, fmt.Errorf("revoke %q: %w", kid, ErrUnknownKID)
	}
	if k.State == store.KeyRevoked {
		return RevokeResult{}, false, fmt.Errorf("revoke %q: %w", kid, ErrAlreadyRevoked)
	}
	now := m.now()
	res = RevokeResult{KID: kid, WasState: k.State}
	change := store.KeyChange{Updates: []store.KeyUpdate{m.revoked(now, *k)}}
	// An active key of an algorithm no longer configured (keys.algorithms)
	// is revoked without a successor: nothing signs with that algorithm.
	if k.State == store.KeyActive && slices.Contains(m.cfg.Policy.algorithms(), keyAlg(k.Algorithm)) {
		if next := findAlg(keys, keyAlg(k.Algorithm), store.KeyNext); next != nil {
			n := *next
			n.State, n.ActivateAt = store.KeyActive, now
			change.Updates = append(change.Updates, store.KeyUpdate{Key: n, From: store.KeyNext})
			res.Activated = n.KID
		} else {
			// No other key may sign: the replacement is generated here, on
			// the critical path, because there is nothing else to publish.
			g, err := generate(m.cfg.Generate, m.cfg.Policy.RSABits, keyAlg(k.Algorithm), m.cfg.Sealer)
			if err != nil {
				return RevokeResult{}, false, err
			}
			m.priv[g.kid], m.pub[g.kid] = g.private, g.private.Public()
			change.Inserts = []store.Key{{KID: g.kid, Algorithm: g.alg, State: store.KeyActive,
				PublicDER: g.publicDER, Sealed: g.sealed, CreatedAt: now, ActivateAt: now}}
			res.Activated = g.kid
		}
	}
	err = m.apply(ctx, change)
	if errors.Is(err, store.ErrConflict) {
		return RevokeResult{}, false, nil
	}
	if err != nil {
		return RevokeResult{}, false, err
	}
	delete(m.priv, kid)
	m.log.Warn("signing key revoked", "kid", kid, "was", string(res.WasState))
	if res.Activated != "" {
		m.rotated(ReasonRevocation, change)
	}
	_, _, err = m.reconcile(ctx, true)
	return res, true, err
}

// Run keeps the key set current until ctx ends: every poll it reads the store's
// key-set version (one cheap query) and reconciles when another process changed
// the set or a scheduled transition is due. Errors are logged and the last good
// snapshot keeps serving.
func (m *Manager) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.Tick(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("key set refresh failed; serving the last loaded set", "err", err)
		}
	}
}

// Tick reconciles if the stored set changed or a transition is due. It
// publishes the stored set and returns without waiting for a key generation
// (which it starts in the background when this process should write a
// missing next key), so a notification is applied within its latency.
func (m *Manager) Tick(ctx context.Context) error {
	s := m.snap.Load()
	if s != nil {
		v, err := m.cfg.Store.KeySetVersion(ctx)
		if err != nil {
			return fmt.Errorf("read key-set version: %w", err)
		}
		if v == s.Version && m.now().Before(m.dueAt(s)) {
			return nil
		}
	}
	_, err := m.settle(ctx, false, s == nil)
	return err
}

// dueAt is the next instant at which the set needs a write: now when it lacks
// its next key (another replica held the lease when one was due, or died
// before making it), else the next activation or removal.
func (m *Manager) dueAt(s *Snapshot) time.Time {
	var due time.Time
	withNext := map[string]bool{}
	consider := func(t time.Time) {
		if !t.IsZero() && (due.IsZero() || t.Before(due)) {
			due = t
		}
	}
	for _, k := range s.Keys {
		switch k.State {
		case store.KeyNext:
			withNext[keyAlg(k.Algorithm)] = true
			consider(k.ActivateAt)
		case store.KeyRetired, store.KeyRevoked:
			consider(k.RemoveAt)
		}
	}
	if len(withNext) < len(m.cfg.Policy.algorithms()) {
		return time.Time{} // due at once
	}
	return due
}
