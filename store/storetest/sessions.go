package storetest

import (
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// testListUserSessions: a user's sessions only, expired ones included, most
// recently seen first, bounded by store.MaxUserSessions.
func testListUserSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	old := newSession(t, "alice", base)
	old.ExpiresAt = base.Add(time.Minute) // expired by now: still listed
	seen := newSession(t, "alice", base.Add(time.Hour))
	seen.LastSeen = base.Add(3 * time.Hour)
	fresh := newSession(t, "alice", base.Add(2*time.Hour))
	bob := newSession(t, "bob", base.Add(5*time.Hour))
	for _, ss := range []store.Session{old, fresh, bob, seen} {
		createSession(t, s, ss)
	}
	checkList := func(user string, want ...store.Session) {
		t.Helper()
		got, err := s.ListUserSessions(ctx, user)
		if err != nil {
			t.Fatalf("ListUserSessions(%s): %v", user, err)
		}
		if got == nil || len(got) != len(want) {
			t.Fatalf("ListUserSessions(%s) = %d sessions (nil: %t), want %d", user, len(got), got == nil, len(want))
		}
		for i := range want {
			if d := sessionDiff(got[i], want[i]); d != "" {
				t.Errorf("ListUserSessions(%s)[%d]: %s", user, i, d)
			}
		}
	}
	checkList("alice", seen, fresh, old)
	checkList("bob", bob)
	checkList("nobody")
	checkList("")

	checkErr(t, "DeleteSession", s.DeleteSession(ctx, fresh.ID), nil)
	checkList("alice", seen, old)

	// Bounded: a user with more sessions gets the most recently seen ones.
	many := make([]store.Session, store.MaxUserSessions+5)
	for i := range many {
		many[i] = newSession(t, "carol", base.Add(time.Duration(i)*time.Second))
		createSession(t, s, many[i])
	}
	got, err := s.ListUserSessions(ctx, "carol")
	if err != nil || len(got) != store.MaxUserSessions {
		t.Fatalf("ListUserSessions(carol) = %d sessions, %v; want %d", len(got), err, store.MaxUserSessions)
	}
	for i, ss := range got {
		if want := many[len(many)-1-i]; ss.ID != want.ID {
			t.Fatalf("ListUserSessions(carol)[%d] = %s, want %s (most recently seen first)", i, ss.ID, want.ID)
		}
	}
}
