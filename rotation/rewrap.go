package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/keygate/keygate/store"
)

// RewrapResult counts what Rewrap did.
type RewrapResult struct {
	Resealed int // keys sealed again under the current key-encryption key
	Current  int // keys that already were
}

// rewrapAttempts bounds how often Rewrap re-reads after losing a race.
const rewrapAttempts = 20

// Rewrap seals every stored private key again under the current (first)
// key-encryption key of sealer, so that the older keys can be dropped from the
// keyring. Every stored key is opened first: if one does not open (ErrWrongKEK)
// nothing is written. Each key is then written on its own, through the store's
// compare-and-swap update (only if it is still in the state it was read in), so
// a server rotating or a CLI revoking at the same time is never undone: a lost
// race re-reads and decides again. Keys already sealed under the current key are
// left alone, so running it twice is harmless, and revoked keys hold nothing.
//
// The one write this can undo is one that changes a key without changing its
// state, landing between Rewrap's read and its write (milliseconds): a
// `keys rotate` that schedules the next key's activation. The next key then
// activates at its regular time; run `keys rotate` again.
func Rewrap(ctx context.Context, st store.KeyStore, sealer *Sealer) (RewrapResult, error) {
	var res RewrapResult
	done := map[string]bool{} // kids resealed by this call
	for attempt := 0; attempt < rewrapAttempts; attempt++ {
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return res, fmt.Errorf("list keys: %w", err)
		}
		pending, current, err := planRewrap(sealer, keys)
		if err != nil {
			return res, err
		}
		if len(pending) == 0 {
			res.Current = uncounted(current, done)
			return res, nil
		}
		conflict := false
		for _, u := range pending {
			err := st.ApplyKeyChange(ctx, store.KeyChange{Updates: []store.KeyUpdate{u}})
			if errors.Is(err, store.ErrConflict) {
				conflict = true
				break // changed under us: re-read
			}
			if err != nil {
				return res, fmt.Errorf("reseal key %s: %w", u.Key.KID, err)
			}
			if !done[u.Key.KID] {
				done[u.Key.KID] = true
				res.Resealed++
			}
		}
		if !conflict {
			res.Current = uncounted(current, done)
			return res, nil
		}
	}
	return res, fmt.Errorf("rewrap: the key set kept changing; %d keys resealed so far, run it again", res.Resealed)
}

// uncounted counts the kids not in done.
func uncounted(kids []string, done map[string]bool) int {
	n := 0
	for _, kid := range kids {
		if !done[kid] {
			n++
		}
	}
	return n
}

// planRewrap opens every sealed key and returns the updates that reseal those not
// under the current key-encryption key, and the kids of those that already are.
func planRewrap(sealer *Sealer, keys []store.Key) ([]store.KeyUpdate, []string, error) {
	var ups []store.KeyUpdate
	var current []string
	for _, k := range keys {
		if len(k.Sealed) == 0 {
			continue // revoked: the private half is erased
		}
		out, changed, err := sealer.Reseal(k.KID, k.Sealed)
		if err != nil {
			return nil, nil, err
		}
		if !changed {
			current = append(current, k.KID)
			continue
		}
		k.Sealed = out
		ups = append(ups, store.KeyUpdate{Key: k, From: k.State})
	}
	return ups, current, nil
}
