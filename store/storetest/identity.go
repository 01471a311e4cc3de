package storetest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// identityTests is the identity contract.
var identityTests = []any{
	testClientRoundTrip, testClients, testClientOrder, testDeleteClientTokens, testUserRoundTrip,
	testUserUniqueness, testUserByLogin, testUserOrder, testDeleteUser, testUpdateUserPassword,
	testUpdateClient, testUpdateUser, testUpdateUserEmailConflict, testRefreshRoundTrip, testRotate,
	testRotateFailures, testConcurrentRotate, testRevokeFamily, testRevokeSubject, testDenyList, testAssertions,
	testConcurrentAssertion, testPruneExpired, testInvalidInput, testLastAdmin,
}

// randomID returns a random hex string shaped like a SHA-256 digest, as
// refresh-token IDs are.
func randomID(t *testing.T) string {
	t.Helper()
	return hex.EncodeToString(randomBytes(t, 32))
}

// differ collects field differences for failure messages.
type differ []string

func (d *differ) add(format string, args ...any) { *d = append(*d, fmt.Sprintf(format, args...)) }

func (d *differ) text(name, got, want string) {
	if got != want {
		d.add("%s %q, want %q", name, got, want)
	}
}

// strings compares string slices, nil equal to empty.
func (d *differ) list(name string, got, want []string) {
	if !slices.Equal(got, want) {
		d.add("%s %q, want %q", name, got, want)
	}
}

// bytes compares byte slices, nil equal to empty.
func (d *differ) blob(name string, got, want []byte) {
	if !bytes.Equal(got, want) {
		d.add("%s %q, want %q", name, got, want)
	}
}

// time compares instants, and requires a non-zero time read back to be in UTC.
func (d *differ) instant(name string, got, want time.Time) {
	switch {
	case want.IsZero() && !got.IsZero():
		d.add("%s %v, want zero", name, got)
	case want.IsZero():
	case !got.Equal(want):
		d.add("%s %v, want %v", name, got, want)
	case got.Location() != time.UTC:
		d.add("%s in location %v, want UTC", name, got.Location())
	}
}

func (d differ) String() string { return strings.Join(d, "; ") }

func clientDiff(got, want store.Client) string {
	var d differ
	d.text("ID", got.ID, want.ID)
	d.text("Name", got.Name, want.Name)
	d.blob("SecretHash", got.SecretHash, want.SecretHash)
	d.blob("JWKS", got.JWKS, want.JWKS)
	d.text("JWKSURI", got.JWKSURI, want.JWKSURI)
	d.list("GrantTypes", got.GrantTypes, want.GrantTypes)
	d.list("Scopes", got.Scopes, want.Scopes)
	d.list("Audience", got.Audience, want.Audience)
	d.list("RedirectURIs", got.RedirectURIs, want.RedirectURIs)
	d.list("AllowedOrigins", got.AllowedOrigins, want.AllowedOrigins)
	d.list("PostLogoutRedirectURIs", got.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs)
	if got.Public != want.Public {
		d.add("Public %v, want %v", got.Public, want.Public)
	}
	if got.AccessTTL != want.AccessTTL {
		d.add("AccessTTL %v, want %v", got.AccessTTL, want.AccessTTL)
	}
	if got.NotBeforeDelay != want.NotBeforeDelay {
		d.add("NotBeforeDelay %v, want %v", got.NotBeforeDelay, want.NotBeforeDelay)
	}
	if got.AllowBareAssertion != want.AllowBareAssertion {
		d.add("AllowBareAssertion %v, want %v", got.AllowBareAssertion, want.AllowBareAssertion)
	}
	if got.Introspect != want.Introspect {
		d.add("Introspect %v, want %v", got.Introspect, want.Introspect)
	}
	if got.ThirdParty != want.ThirdParty {
		d.add("ThirdParty %v, want %v", got.ThirdParty, want.ThirdParty)
	}
	if got.SigningAlg != want.SigningAlg {
		d.add("SigningAlg %q, want %q", got.SigningAlg, want.SigningAlg)
	}
	if got.DPoPBoundAccessTokens != want.DPoPBoundAccessTokens {
		d.add("DPoPBoundAccessTokens %v, want %v", got.DPoPBoundAccessTokens, want.DPoPBoundAccessTokens)
	}
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.blob("PreviousSecretHash", got.PreviousSecretHash, want.PreviousSecretHash)
	d.instant("PreviousSecretExpiresAt", got.PreviousSecretExpiresAt, want.PreviousSecretExpiresAt)
	return d.String()
}

func userDiff(got, want store.User) string {
	var d differ
	d.text("ID", got.ID, want.ID)
	d.text("Username", got.Username, want.Username)
	d.text("Email", got.Email, want.Email)
	d.text("Name", got.Name, want.Name)
	d.text("PasswordHash", got.PasswordHash, want.PasswordHash)
	if got.Admin != want.Admin {
		d.add("Admin %v, want %v", got.Admin, want.Admin)
	}
	d.instant("CreatedAt", got.CreatedAt, want.CreatedAt)
	d.instant("UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	d.instant("DisabledAt", got.DisabledAt, want.DisabledAt)
	return d.String()
}

// checkErr fails the test unless err wraps want (or is nil when want is nil).
func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v, want success", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// checkInvalid fails the test unless err is an error wrapping neither
// store.ErrConflict nor store.ErrNotFound: refused input, not a lost race or a
// missing record.
func checkInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s: got error %v, want an invalid-input error (neither ErrConflict nor ErrNotFound)", what, err)
	}
}

// --- clients ---

// newClient returns a client with every field set.
func newClient(t *testing.T, id string) store.Client {
	t.Helper()
	return store.Client{
		ID:                 id,
		Name:               "Client " + id,
		SecretHash:         randomBytes(t, 32),
		JWKS:               []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
		JWKSURI:            "https://" + id + ".example/jwks.json",
		GrantTypes:         []string{"client_credentials", "refresh_token"},
		Scopes:             []string{"openid", "read:all"},
		Audience:           []string{"https://api.example", "urn:other"},
		RedirectURIs:       []string{"https://app.example/cb"},
		AllowedOrigins:     []string{"https://spa.example", "http://localhost:5173"},
		AccessTTL:          15*time.Minute + 7,
		NotBeforeDelay:     3*time.Second + 11,
		AllowBareAssertion: true,
		Introspect:         true,
		ThirdParty:         true,
		SigningAlg:         "ES256",
		CreatedAt:          base,

		DPoPBoundAccessTokens: true,

		PostLogoutRedirectURIs: []string{"https://app.example/bye", "https://app.example/bye?from=idp"},
	}
}

func getClient(t *testing.T, s store.Store, id string) store.Client {
	t.Helper()
	return mustGet(t, "GetClient", s.GetClient, id)
}

func listClients(t *testing.T, s store.Store) []store.Client {
	t.Helper()
	return mustList(t, "ListClients", s.ListClients)
}

// checkClients fails the test unless got holds exactly want, in order.
func checkClients(t *testing.T, got, want []store.Client) {
	t.Helper()
	checkAll(t, "client", got, want, clientDiff, func(c store.Client) string { return c.ID })
}

func testClientRoundTrip(t *testing.T, s store.Store) {
	nyc := time.FixedZone("UTC-5", -5*60*60)
	cases := []struct {
		name   string
		client func(t *testing.T) store.Client
	}{
		{"every field set", func(t *testing.T) store.Client { return newClient(t, "c1-full") }},
		{"public: no secret, no keys, nil slices, zero durations and time", func(t *testing.T) store.Client {
			return store.Client{ID: "c2-public", Name: "Public", Public: true, GrantTypes: []string{"authorization_code"}}
		}},
		{"empty non-nil slices", func(t *testing.T) store.Client {
			c := newClient(t, "c3-empty")
			c.SecretHash, c.JWKS = []byte{}, []byte{}
			c.GrantTypes, c.Scopes, c.Audience, c.RedirectURIs = []string{}, []string{}, []string{}, []string{}
			c.AllowedOrigins = []string{}
			c.PostLogoutRedirectURIs = []string{}
			return c
		}},
		{"awkward strings in slices", func(t *testing.T) store.Client {
			c := newClient(t, "c4-awkward")
			c.Scopes = []string{"", `quote"d`, `back\slash`, "émoji 🔑", "comma,separated", "[bracket]", "null"}
			c.RedirectURIs = []string{"https://app.example/cb?x=1&y=%20", "http://127.0.0.1:8080/"}
			return c
		}},
		{"large and negative durations, time in another zone", func(t *testing.T) store.Client {
			c := newClient(t, "c5-durations")
			c.AccessTTL = 1<<62 + 1
			c.NotBeforeDelay = -time.Second
			c.AllowBareAssertion = false
			c.Introspect = false
			c.ThirdParty = false
			c.CreatedAt = base.Add(time.Nanosecond).In(nyc)
			return c
		}},
		{"keys by URI only", func(t *testing.T) store.Client {
			c := newClient(t, "c6-uri")
			c.SecretHash, c.JWKS = nil, nil
			return c
		}},
	}
	var all []store.Client
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.client(t)
			if err := s.CreateClient(t.Context(), want); err != nil {
				t.Fatalf("CreateClient: %v", err)
			}
			if d := clientDiff(getClient(t, s, want.ID), want); d != "" {
				t.Errorf("GetClient: %s", d)
			}
			all = append(all, want)
			checkClients(t, listClients(t, s), all) // IDs chosen in order
		})
	}
}

func testClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	if cs := listClients(t, s); len(cs) != 0 {
		t.Fatalf("new store lists %d clients, want none", len(cs))
	}
	_, err := s.GetClient(ctx, "nobody")
	checkErr(t, "GetClient of an unknown client", err, store.ErrNotFound)
	checkErr(t, "DeleteClient of an unknown client", s.DeleteClient(ctx, "nobody"), store.ErrNotFound)

	c := newClient(t, "app")
	checkErr(t, "CreateClient", s.CreateClient(ctx, c), nil)
	dup := newClient(t, "app")
	dup.Name = "Impostor"
	checkErr(t, "CreateClient with a taken ID", s.CreateClient(ctx, dup), store.ErrConflict)
	if d := clientDiff(getClient(t, s, "app"), c); d != "" {
		t.Errorf("after a refused duplicate: %s", d)
	}
	if _, err := s.GetClient(ctx, "APP"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetClient with the ID in other case: %v, want ErrNotFound (IDs are exact)", err)
	}

	checkErr(t, "DeleteClient", s.DeleteClient(ctx, "app"), nil)
	_, err = s.GetClient(ctx, "app")
	checkErr(t, "GetClient after DeleteClient", err, store.ErrNotFound)
	checkErr(t, "DeleteClient again", s.DeleteClient(ctx, "app"), store.ErrNotFound)
	checkErr(t, "CreateClient reusing a deleted ID", s.CreateClient(ctx, dup), nil)
	checkClients(t, listClients(t, s), []store.Client{dup})
}

func testClientOrder(t *testing.T, s store.Store) {
	// Byte order, whatever the database's collation: upper case before
	// '_' before lower case before non-ASCII.
	ids := []string{"b", "é", "aa", "B", "_", "a", "a-b", "Z"}
	for _, id := range ids {
		checkErr(t, "CreateClient "+id, s.CreateClient(t.Context(), store.Client{ID: id, Name: id}), nil)
	}
	slices.Sort(ids)
	var got []string
	for _, c := range listClients(t, s) {
		got = append(got, c.ID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("ListClients order %q, want %q", got, ids)
	}
}

func testDeleteClientTokens(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"gone", "stays"} {
		checkErr(t, "CreateClient", s.CreateClient(ctx, newClient(t, id)), nil)
	}
	var gone, stays []store.RefreshToken
	for i := range 3 {
		rt := newLink(t, randomID(t), base)
		rt.ClientID = "gone"
		if i == 2 {
			rt.ClientID = "stays"
			stays = append(stays, rt)
		} else {
			gone = append(gone, rt)
		}
		createLink(t, s, rt)
	}
	// A token of a client from the configuration file, not in the store.
	configured := newLink(t, randomID(t), base)
	configured.ClientID = "configured"
	createLink(t, s, configured)
	stays = append(stays, configured)

	checkErr(t, "DeleteClient", s.DeleteClient(ctx, "gone"), nil)
	for _, rt := range gone {
		_, err := s.GetRefreshToken(ctx, rt.ID)
		checkErr(t, "GetRefreshToken of a deleted client's token", err, store.ErrNotFound)
	}
	for _, rt := range stays {
		checkLink(t, s, rt)
	}
}

// --- users ---

// newUser returns a user with every field set but Email.
func newUser(t *testing.T, username, email string) store.User {
	t.Helper()
	return store.User{
		ID:           randomID(t)[:32],
		Username:     username,
		Email:        email,
		Name:         "Name of " + username,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$" + randomID(t)[:22] + "$" + randomID(t)[:43],
		CreatedAt:    base,
		UpdatedAt:    base.Add(time.Nanosecond),
	}
}

func createUser(t *testing.T, s store.Store, u store.User) {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%q, %q): %v", u.Username, u.Email, err)
	}
}

func getUser(t *testing.T, s store.Store, id string) store.User {
	t.Helper()
	return mustGet(t, "GetUser", s.GetUser, id)
}

func listUsers(t *testing.T, s store.Store) []store.User {
	t.Helper()
	return mustList(t, "ListUsers", s.ListUsers)
}

// checkUsers fails the test unless got holds exactly want, in order.
func checkUsers(t *testing.T, got, want []store.User) {
	t.Helper()
	checkAll(t, "user", got, want, userDiff, func(u store.User) string { return u.Username })
}

func testUserRoundTrip(t *testing.T, s store.Store) {
	nyc := time.FixedZone("UTC-5", -5*60*60)
	cases := []struct {
		name string
		user func(t *testing.T) store.User
	}{
		{"every field set", func(t *testing.T) store.User {
			u := newUser(t, "a-full", "Full@Example.com")
			u.Admin = true
			u.Name = "Ådne Ørsted-Ñúñez"
			return u
		}},
		{"no email, name, hash or times", func(t *testing.T) store.User {
			return store.User{ID: randomID(t)[:32], Username: "b-minimal"}
		}},
		{"times in another zone", func(t *testing.T) store.User {
			u := newUser(t, "c-zone", "")
			u.CreatedAt = base.Add(7).In(nyc)
			u.UpdatedAt = time.Date(2199, time.December, 31, 23, 59, 59, 999999999, nyc)
			return u
		}},
	}
	var all []store.User
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.user(t)
			createUser(t, s, want)
			if d := userDiff(getUser(t, s, want.ID), want); d != "" {
				t.Errorf("GetUser: %s", d)
			}
			all = append(all, want)
			checkUsers(t, listUsers(t, s), all) // usernames chosen in order
		})
	}
	_, err := s.GetUser(t.Context(), "nobody")
	checkErr(t, "GetUser of an unknown user", err, store.ErrNotFound)
}

func testUserUniqueness(t *testing.T, open func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		// add is created in order; all but the last must succeed, and the
		// last must conflict if conflict is set.
		add      func(t *testing.T, seed []store.User) []store.User
		conflict bool
	}{
		{"same username", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "bob", "")}
		}, true},
		{"username differing only in case", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "aLICE", "")}
		}, true},
		{"non-ASCII username differing only in case", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "ÉMILE", "")}
		}, true},
		{"email differing only in case", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "carol", "alice@EXAMPLE.com")}
		}, true},
		{"non-ASCII email differing only in case", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "carol", "ÉMILE@EXEMPLE.FR")}
		}, true},
		{"taken ID", func(t *testing.T, seed []store.User) []store.User {
			u := newUser(t, "carol", "carol@example.com")
			u.ID = seed[0].ID
			return []store.User{u}
		}, true},
		{"taken email on the second of two new users", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "carol", "shared@example.com"), newUser(t, "dave", "Shared@Example.com")}
		}, true},
		{"many users without email", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "carol", ""), newUser(t, "dave", ""), newUser(t, "erin", "")}
		}, false},
		{"username equal to another's email", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "alice@example.com", "")}
		}, false},
		{"similar but different names", func(t *testing.T, _ []store.User) []store.User {
			return []store.User{newUser(t, "alice2", "alice@example.co"), newUser(t, "bob ", ""), newUser(t, "emile", "emile@exemple.fr")}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			seed := []store.User{
				newUser(t, "Alice", "Alice@Example.com"),
				newUser(t, "bob", ""),
				newUser(t, "émile", "émile@exemple.fr"),
			}
			for _, u := range seed {
				createUser(t, s, u)
			}
			add := c.add(t, seed)
			want := slices.Clone(seed)
			for i, u := range add {
				err := s.CreateUser(t.Context(), u)
				if i == len(add)-1 && c.conflict {
					checkErr(t, fmt.Sprintf("CreateUser(%q, %q)", u.Username, u.Email), err, store.ErrConflict)
					break
				}
				checkErr(t, fmt.Sprintf("CreateUser(%q, %q)", u.Username, u.Email), err, nil)
				want = append(want, u)
			}
			slices.SortFunc(want, func(a, b store.User) int {
				return strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username))
			})
			checkUsers(t, listUsers(t, s), want)
		})
	}
}

func testUserByLogin(t *testing.T, s store.Store) {
	alice := newUser(t, "Alice", "Alice@Example.com")
	bob := newUser(t, "bob", "")
	emile := newUser(t, "Émile", "émile@exemple.fr")
	// mallory's username is bobby's email: a username match wins.
	mallory := newUser(t, "bob@example.org", "")
	bobby := newUser(t, "bobby", "bob@example.org")
	for _, u := range []store.User{alice, bob, emile, mallory, bobby} {
		createUser(t, s, u)
	}
	cases := []struct {
		login string
		want  *store.User // nil: ErrNotFound
	}{
		{"Alice", &alice},
		{"aLiCe", &alice},
		{"alice@example.com", &alice},
		{"ALICE@EXAMPLE.COM", &alice},
		{"bob", &bob},
		{"BOB", &bob},
		{"émile", &emile},
		{"ÉMILE", &emile},
		{"ÉMILE@EXEMPLE.FR", &emile},
		{"BOB@example.org", &mallory},
		{"bobby", &bobby},
		{"", nil},
		{"ali", nil},
		{"alice ", nil},
		{"example.com", nil},
		{"nobody@example.com", nil},
	}
	for _, c := range cases {
		u, err := s.GetUserByLogin(t.Context(), c.login)
		if c.want == nil {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetUserByLogin(%q): user %q, error %v; want ErrNotFound", c.login, u.Username, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("GetUserByLogin(%q): %v", c.login, err)
			continue
		}
		if d := userDiff(u, *c.want); d != "" {
			t.Errorf("GetUserByLogin(%q): %s", c.login, d)
		}
	}
}

func testUserOrder(t *testing.T, s store.Store) {
	names := []string{"bob", "Émile", "Alice", "carol", "_x", "Dave", "émilie", "alice2"}
	for _, n := range names {
		createUser(t, s, newUser(t, n, ""))
	}
	// By lowercased username, in byte order.
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	var got []string
	for _, u := range listUsers(t, s) {
		got = append(got, u.Username)
	}
	if !slices.Equal(got, names) {
		t.Errorf("ListUsers order %q, want %q", got, names)
	}
}

func testDeleteUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	gone, stays := newUser(t, "gone", "gone@example.com"), newUser(t, "stays", "stays@example.com")
	createUser(t, s, gone)
	createUser(t, s, stays)

	var goneLinks, otherLinks []store.RefreshToken
	for range 2 { // two families of the user being deleted, one rotated
		first := newLink(t, randomID(t), base)
		first.Subject = gone.ID
		createLink(t, s, first)
		next := nextLink(t, first, base.Add(time.Minute))
		checkErr(t, "RotateRefreshToken", s.RotateRefreshToken(ctx, first.ID, base.Add(time.Minute), next), nil)
		goneLinks = append(goneLinks, first, next)
	}
	other := newLink(t, randomID(t), base)
	other.Subject = stays.ID
	clientGrant := newLink(t, randomID(t), base)
	clientGrant.Subject = "some-client"
	for _, rt := range []store.RefreshToken{other, clientGrant} {
		createLink(t, s, rt)
		otherLinks = append(otherLinks, rt)
	}

	checkErr(t, "DeleteUser", s.DeleteUser(ctx, gone.ID), nil)
	_, err := s.GetUser(ctx, gone.ID)
	checkErr(t, "GetUser after DeleteUser", err, store.ErrNotFound)
	for _, rt := range goneLinks {
		_, err := s.GetRefreshToken(ctx, rt.ID)
		checkErr(t, "GetRefreshToken of a deleted user's token", err, store.ErrNotFound)
	}
	for _, rt := range otherLinks {
		checkLink(t, s, rt)
	}
	checkUsers(t, listUsers(t, s), []store.User{stays})
	checkErr(t, "DeleteUser again", s.DeleteUser(ctx, gone.ID), store.ErrNotFound)
	checkErr(t, "DeleteUser of an unknown user", s.DeleteUser(ctx, "nobody"), store.ErrNotFound)

	// The deleted user's username and email are free again.
	again := newUser(t, "GONE", "Gone@Example.com")
	checkErr(t, "CreateUser with a deleted user's names", s.CreateUser(ctx, again), nil)
}

func testUpdateUserPassword(t *testing.T, s store.Store) {
	ctx := t.Context()
	u, other := newUser(t, "alice", "alice@example.com"), newUser(t, "bob", "")
	createUser(t, s, u)
	createUser(t, s, other)

	now := base.Add(time.Hour + 3).In(time.FixedZone("X", 3600))
	checkErr(t, "UpdateUserPassword", s.UpdateUserPassword(ctx, u.ID, "$argon2id$new", now), nil)
	want := u
	want.PasswordHash, want.UpdatedAt = "$argon2id$new", now
	if d := userDiff(getUser(t, s, u.ID), want); d != "" {
		t.Errorf("after UpdateUserPassword: %s", d)
	}
	if d := userDiff(getUser(t, s, other.ID), other); d != "" {
		t.Errorf("other user after UpdateUserPassword: %s", d)
	}
	checkErr(t, "UpdateUserPassword of an unknown user",
		s.UpdateUserPassword(ctx, "nobody", "$argon2id$x", now), store.ErrNotFound)
}
