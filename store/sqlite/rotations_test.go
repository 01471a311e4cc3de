package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/poll"
	"github.com/keygate/keygate/store"
)

// TestGroupCommitIsolatesFailures queues rotations while the writer is busy,
// so that the first caller to get it runs them all in one transaction: every
// good rotation commits, and each failing one (a spent link, an unknown one,
// a next ID taken, a next in another family, a caller that gave up) fails
// alone with its own error and writes nothing.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "keygate.db"))
	ctx := t.Context()
	now := time.Now()
	for w := range 8 {
		if err := s.CreateRefreshToken(ctx, chainLink(w, 0, now)); err != nil {
			t.Fatal(err)
		}
	}
	// Chain 7's first link is already spent.
	if err := s.RotateRefreshToken(ctx, chainLink(7, 0, now).ID, now, chainLink(7, 1, now)); err != nil {
		t.Fatal(err)
	}
	gaveUp, giveUp := context.WithCancel(ctx)
	otherFamily := chainLink(4, 1, now)
	otherFamily.FamilyID = "fam0"
	taken := chainLink(2, 1, now)
	taken.ID = chainLink(7, 1, now).ID
	cases := []struct {
		ctx      context.Context
		old      string
		next     store.RefreshToken
		want     error // nil, or what the error wraps
		stored   bool  // whether next is stored afterwards
		oldSpent bool
	}{
		{ctx, chainLink(0, 0, now).ID, chainLink(0, 1, now), nil, true, true},
		{ctx, chainLink(7, 0, now).ID, chainLink(7, 9, now), store.ErrConflict, false, true}, // reuse
		{ctx, chainLink(1, 0, now).ID, chainLink(1, 1, now), nil, true, true},
		{ctx, "nobody", chainLink(9, 1, now), store.ErrNotFound, false, false},
		{ctx, chainLink(2, 0, now).ID, taken, store.ErrConflict, false, false}, // next ID taken
		{ctx, chainLink(3, 0, now).ID, chainLink(3, 1, now), nil, true, true},
		{ctx, chainLink(4, 0, now).ID, otherFamily, errOther, false, false},
		{gaveUp, chainLink(5, 0, now).ID, chainLink(5, 1, now), context.Canceled, false, false},
		{ctx, chainLink(6, 0, now).ID, chainLink(6, 1, now), nil, true, true},
	}
	if err := s.db.enter(ctx); err != nil { // the writer is busy
		t.Fatal(err)
	}
	before := s.rot.batches.Load()
	errs := make(chan [2]any, len(cases))
	for i, c := range cases {
		go func() { errs <- [2]any{i, s.RotateRefreshToken(c.ctx, c.old, now, c.next)} }()
	}
	poll.Until(t, 10*time.Second, "every rotation queued", func() bool {
		s.rot.mu.Lock()
		defer s.rot.mu.Unlock()
		return len(s.rot.pending) == len(cases)
	})
	giveUp() // queued, then its caller gives up before the writer is free
	got := map[int]error{}
	got[7] = (<-errs)[1].(error) // the withdrawn one returns at once
	s.db.leave()
	for range len(cases) - 1 {
		r := <-errs
		err, _ := r[1].(error)
		got[r[0].(int)] = err
	}
	if n := s.rot.batches.Load() - before; n != 1 {
		t.Errorf("%d transactions, want the %d queued rotations in one", n, len(cases)-1)
	}
	for i, c := range cases {
		err := got[i]
		switch {
		case c.want == nil && err != nil, c.want == errOther && (err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)),
			c.want != nil && c.want != errOther && !errors.Is(err, c.want):
			t.Errorf("case %d (%s → %s): %v, want %v", i, c.old, c.next.ID, err, c.want)
		}
		checkLink(t, s, c.next.ID, c.stored, false)
		if c.old != "nobody" && i != 1 {
			checkLink(t, s, c.old, true, c.oldSpent)
		}
	}
}

// errOther marks a case whose error wraps neither store.ErrConflict nor
// store.ErrNotFound.
var errOther = errors.New("another error")

// checkLink fails unless link id is stored (as stored says) and, if stored,
// spent as spent says. An ID stored by an earlier step (chain 7's) counts as
// stored.
func checkLink(t *testing.T, s *Store, id string, stored, spent bool) {
	t.Helper()
	rt, err := s.GetRefreshToken(t.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if stored {
			t.Errorf("link %s not stored", id)
		}
	case err != nil:
		t.Fatal(err)
	case !stored && id != chainLink(7, 1, time.Time{}).ID:
		t.Errorf("link %s stored, want none", id)
	case stored && spent != !rt.UsedAt.IsZero():
		t.Errorf("link %s spent %v, want %v", id, !rt.UsedAt.IsZero(), spent)
	}
}
