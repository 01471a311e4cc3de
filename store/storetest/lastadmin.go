package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/stampede"
	"github.com/keygate/keygate/store"
)

// adminWrite is one way of taking a user out of the enabled admins.
type adminWrite struct {
	name string
	do   func(ctx context.Context, s store.Store, u store.User) error
}

// adminWrites are the writes guarded by store.ErrLastAdmin.
var adminWrites = []adminWrite{
	{"demote", func(ctx context.Context, s store.Store, u store.User) error {
		u.Admin, u.UpdatedAt = false, base.Add(time.Hour)
		return s.UpdateUser(ctx, u)
	}},
	{"disable", func(ctx context.Context, s store.Store, u store.User) error {
		u.DisabledAt, u.UpdatedAt = base.Add(time.Hour), base.Add(time.Hour)
		return s.UpdateUser(ctx, u)
	}},
	{"delete", func(ctx context.Context, s store.Store, u store.User) error { return s.DeleteUser(ctx, u.ID) }},
}

// enabledAdmins lists the usernames of the users who are admins and enabled.
func enabledAdmins(t *testing.T, s store.Store) []string {
	t.Helper()
	var out []string
	for _, u := range listUsers(t, s) {
		if u.Admin && !u.Disabled() {
			out = append(out, u.Username)
		}
	}
	return out
}

// testLastAdmin: demoting, disabling or deleting the only enabled admin is
// ErrLastAdmin and changes nothing; with another enabled admin it passes; a
// disabled admin does not count as another; other changes to the last admin
// (name, email) and any write to a non-admin pass.
func testLastAdmin(t *testing.T, open func(*testing.T) store.Store) {
	for _, w := range adminWrites {
		for _, tc := range []struct {
			name  string
			other func(u store.User) store.User // the second user, or nil for none
			want  error
		}{
			{"alone", nil, store.ErrLastAdmin},
			{"beside a user", func(u store.User) store.User { return u }, store.ErrLastAdmin},
			{"beside a disabled admin", func(u store.User) store.User {
				u.Admin, u.DisabledAt = true, base.Add(time.Minute)
				return u
			}, store.ErrLastAdmin},
			{"beside an enabled admin", func(u store.User) store.User { u.Admin = true; return u }, nil},
		} {
			t.Run(w.name+" "+tc.name, func(t *testing.T) {
				s := open(t)
				root := newUser(t, "root", "root@example.com")
				root.Admin = true
				createUser(t, s, root)
				if tc.other != nil {
					createUser(t, s, tc.other(newUser(t, "other", "")))
				}
				before := listUsers(t, s)
				err := w.do(t.Context(), s, root)
				checkErr(t, w.name+" root", err, tc.want)
				if tc.want != nil {
					checkUsers(t, listUsers(t, s), before)
				}
			})
		}
	}
	t.Run("profile of the last admin", func(t *testing.T) {
		s := open(t)
		root := newUser(t, "root", "root@example.com")
		root.Admin = true
		createUser(t, s, root)
		root.Name, root.Email, root.UpdatedAt = "Root R.", "r@example.com", base.Add(time.Hour)
		if err := s.UpdateUser(t.Context(), root); err != nil {
			t.Fatalf("UpdateUser(name and email of the last admin): %v", err)
		}
		bob := newUser(t, "bob", "")
		createUser(t, s, bob)
		bob.DisabledAt = base.Add(time.Hour)
		if err := s.UpdateUser(t.Context(), bob); err != nil {
			t.Fatalf("UpdateUser(disable a non-admin): %v", err)
		}
		if err := s.DeleteUser(t.Context(), bob.ID); err != nil {
			t.Fatalf("DeleteUser(a non-admin): %v", err)
		}
	})
}

// testLastAdminConcurrent: the two enabled admins are each demoted,
// disabled or deleted at the same instant, through two stores on one
// database (two processes: the server and the CLI, or two replicas), many
// times over: every time exactly one write passes and the other is
// ErrLastAdmin, so one enabled admin is left. Checking and writing in two
// steps would let both pass.
func testLastAdminConcurrent(t *testing.T, open func(*testing.T) (store.Store, store.Store)) {
	for _, w1 := range adminWrites {
		for _, w2 := range adminWrites {
			t.Run(w1.name+" and "+w2.name, func(t *testing.T) {
				stores := pair(open(t))
				for round := range 5 {
					a, b := newUser(t, fmt.Sprintf("a%d", round), ""), newUser(t, fmt.Sprintf("b%d", round), "")
					a.Admin, b.Admin = true, true
					createUser(t, stores[0], a)
					createUser(t, stores[0], b)
					if round > 0 { // the survivor of the last round steps down
						for _, u := range listUsers(t, stores[0]) {
							if u.Admin && !u.Disabled() && u.ID != a.ID && u.ID != b.ID {
								if err := stores[0].DeleteUser(t.Context(), u.ID); err != nil {
									t.Fatalf("delete the last round's admin: %v", err)
								}
							}
						}
					}
					errs := stampede.Run(2, func(i int) error {
						w, u := w1, a
						if i == 1 {
							w, u = w2, b
						}
						return w.do(t.Context(), stores[i], u)
					})
					var passed, refused int
					for i, err := range errs {
						switch {
						case err == nil:
							passed++
						case errors.Is(err, store.ErrLastAdmin):
							refused++
						default:
							t.Fatalf("round %d, write %d: %v", round, i, err)
						}
					}
					if passed != 1 || refused != 1 {
						t.Fatalf("round %d: %d passed, %d refused (%v); want one each", round, passed, refused, errs)
					}
					if got := enabledAdmins(t, stores[1]); len(got) != 1 {
						t.Fatalf("round %d: enabled admins %v, want one", round, got)
					}
				}
			})
		}
	}
}
