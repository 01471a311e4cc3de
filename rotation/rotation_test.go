package rotation_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/rotation"
	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/sqlite"
)

// clock is an injected clock: months of rotation run in microseconds.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// policy: a day per key, published 6 h ahead, tokens live 1 h + 1 h leeway.
var policy = rotation.Policy{RotationPeriod: 24 * time.Hour, PublishAhead: 6 * time.Hour, Retention: 2 * time.Hour, RSABits: 2048}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newKEK(t *testing.T) []byte {
	k := make([]byte, rotation.KEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newManager(t *testing.T, st store.KeyStore, kek []byte, clk *clock, rotations *atomic.Int32) *rotation.Manager {
	t.Helper()
	sealer, err := rotation.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rotation.New(rotation.Config{Policy: policy, Store: st, Sealer: sealer, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnRotate: func(rotation.Reason) {
			if rotations != nil {
				rotations.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// names gives keys short names (K1, K2, ...) in the order they first appear, so a
// table can talk about random kids.
type names map[string]string

func (n names) of(kid string) string {
	if s, ok := n[kid]; ok {
		return s
	}
	n[kid] = "K" + strconv.Itoa(len(n)+1)
	return n[kid]
}

func published(n names, s *rotation.Snapshot) []string {
	var out []string
	for _, k := range s.Published() {
		out = append(out, n.of(k.KID))
	}
	return out
}

// TestScheduleTable walks the state machine through several periods with manual
// rotation and revocation mixed in, checking the published set and the signer.
func TestScheduleTable(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	m := newManager(t, st, newKEK(t), clk, nil)
	n := names{}
	h := func(x float64) time.Time { return t0.Add(time.Duration(x * float64(time.Hour))) }

	steps := []struct {
		at        time.Time
		action    string // "", "rotate", "force", or "revoke <name>"
		published []string
		signing   string
		scheduled bool
	}{
		{at: h(0), published: []string{"K1", "K2"}, signing: "K1"},
		{at: h(23.9), published: []string{"K1", "K2"}, signing: "K1"},
		{at: h(24), published: []string{"K2", "K3", "K1"}, signing: "K2"}, // scheduled rotation
		{at: h(25.9), published: []string{"K2", "K3", "K1"}, signing: "K2"},
		{at: h(26), published: []string{"K2", "K3"}, signing: "K2"}, // K1 past retention
		{at: h(30), action: "rotate", published: []string{"K3", "K4", "K2"}, signing: "K3"},
		{at: h(31), action: "rotate", published: []string{"K3", "K4", "K2"}, signing: "K3", scheduled: true}, // K4 is 1 h old
		{at: h(32), published: []string{"K3", "K4"}, signing: "K3"},
		{at: h(36), published: []string{"K4", "K5", "K3"}, signing: "K4"}, // the scheduled manual rotation
		{at: h(37), action: "revoke K5", published: []string{"K4", "K6", "K3"}, signing: "K4"},
		{at: h(37.9), published: []string{"K4", "K6", "K3"}, signing: "K4"},              // K3 retired at 36 h, kept until 38 h
		{at: h(38), action: "revoke K4", published: []string{"K6", "K7"}, signing: "K6"}, // emergency: next takes over; K3 removed
		{at: h(38.5), action: "force", published: []string{"K7", "K8", "K6"}, signing: "K7"},
		{at: h(39), action: "revoke K6", published: []string{"K7", "K8"}, signing: "K7"}, // a retired key
		{at: h(40.5), published: []string{"K7", "K8"}, signing: "K7"},
		{at: h(62.5), published: []string{"K8", "K9", "K7"}, signing: "K8"}, // K8 activates at K7.activate+24h
		{at: h(86.5), published: []string{"K9", "K10", "K8"}, signing: "K9"},
		{at: h(200), published: []string{"K10", "K11", "K9"}, signing: "K10"}, // server was down for days: one late rotation
		{at: h(202), published: []string{"K10", "K11"}, signing: "K10"},
	}
	for _, s := range steps {
		clk.Set(s.at)
		var res rotation.RotateResult
		var err error
		switch {
		case s.action == "rotate" || s.action == "force":
			res, err = m.Rotate(ctx, s.action == "force")
		case len(s.action) > 7 && s.action[:7] == "revoke ":
			kid := ""
			for k, v := range n {
				if v == s.action[7:] {
					kid = k
				}
			}
			_, err = m.Revoke(ctx, kid)
		}
		if err != nil {
			t.Fatalf("t=%s %s: %v", s.at.Sub(t0), s.action, err)
		}
		if res.Scheduled != s.scheduled {
			t.Errorf("t=%s %s: scheduled=%v, want %v", s.at.Sub(t0), s.action, res.Scheduled, s.scheduled)
		}
		snap, err := m.Reconcile(ctx)
		if err != nil {
			t.Fatalf("t=%s: %v", s.at.Sub(t0), err)
		}
		got := published(n, snap)
		if !reflect.DeepEqual(got, s.published) {
			t.Errorf("t=%s %s: published %v, want %v", s.at.Sub(t0), s.action, got, s.published)
		}
		if g := n.of(snap.Signing.KID); g != s.signing {
			t.Errorf("t=%s %s: signing %s, want %s", s.at.Sub(t0), s.action, g, s.signing)
		}
	}
	// The revoked keys are kept as records (not published) with their private half erased.
	rows, err := st.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.State == store.KeyRevoked && len(r.Sealed) != 0 {
			t.Errorf("revoked key %s still holds its sealed private key", n.of(r.KID))
		}
	}
}

// TestInvariantsOverTime moves the clock in 30-minute steps across ten periods,
// signs a token at each step and checks, at every step: a consumer that refreshes
// the JWKS only every max-age (publish_ahead/2) always holds the signing key;
// every scheduled signer was published at least publish_ahead before it signed;
// every unexpired token's key is still published.
func TestInvariantsOverTime(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: t0}
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	var rotations atomic.Int32
	m := newManager(t, st, newKEK(t), clk, &rotations)
	const tokenTTL = time.Hour // Retention = tokenTTL + 1 h leeway
	maxAge := policy.PublishAhead / 2

	type token struct {
		kid string
		exp time.Time
	}
	var tokens []token
	var cache map[string]bool // what a max-age-honouring consumer holds
	var cachedAt time.Time
	first := ""
	for now := t0; now.Before(t0.Add(10 * policy.RotationPeriod)); now = now.Add(30 * time.Minute) {
		clk.Set(now)
		snap, err := m.Reconcile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = snap.Signing.KID
		}
		pub := map[string]bool{}
		for _, k := range snap.Published() {
			pub[k.KID] = true
		}
		if cache == nil || now.Sub(cachedAt) >= maxAge {
			cache, cachedAt = pub, now
		}
		if !cache[snap.Signing.KID] {
			t.Fatalf("t=%s: a consumer caching for %s does not hold the signing key", now.Sub(t0), maxAge)
		}
		signer, _ := snap.Find(snap.Signing.KID)
		if snap.Signing.KID != first && signer.ActivateAt.Sub(signer.CreatedAt) < policy.PublishAhead {
			t.Fatalf("t=%s: signer published %s before signing, want >= %s", now.Sub(t0), signer.ActivateAt.Sub(signer.CreatedAt), policy.PublishAhead)
		}
		tokens = append(tokens, token{kid: snap.Signing.KID, exp: now.Add(tokenTTL)})
		for _, tok := range tokens {
			if now.Before(tok.exp) && !pub[tok.kid] {
				t.Fatalf("t=%s: key %s signed a token valid until %s but is no longer published", now.Sub(t0), tok.kid, tok.exp.Sub(t0))
			}
		}
		if len(snap.Published()) > 3 {
			t.Fatalf("t=%s: %d keys published, want at most active+next+one retired", now.Sub(t0), len(snap.Published()))
		}
	}
	// One initial key plus one scheduled rotation per period.
	if got := rotations.Load(); got != 10 {
		t.Errorf("rotations = %d over 10 periods, want 10 (1 initial + 9 scheduled)", got)
	}
}

// TestRestartKeepsKeys: a new process on the same database loads the same keys and
// states and does not rotate.
func TestRestartKeepsKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	kek := newKEK(t)
	clk := &clock{t: t0}
	st1, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	m1 := newManager(t, st1, kek, clk, nil)
	s1, err := m1.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st1.Close()

	clk.Set(t0.Add(time.Hour))
	st2 := openStore(t, path)
	var rotations atomic.Int32
	m2 := newManager(t, st2, kek, clk, &rotations)
	s2, err := m2.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rotations.Load() != 0 {
		t.Errorf("restart rotated %d times", rotations.Load())
	}
	if s1.Version != s2.Version || s1.Signing.KID != s2.Signing.KID || !reflect.DeepEqual(kids(s1), kids(s2)) {
		t.Errorf("after restart: version %d→%d, signing %s→%s, keys %v→%v", s1.Version, s2.Version, s1.Signing.KID, s2.Signing.KID, kids(s1), kids(s2))
	}
	if !s1.Signing.Private.Equal(s2.Signing.Private) {
		t.Error("after restart the signing key's private half differs")
	}
}

func kids(s *rotation.Snapshot) []string {
	var out []string
	for _, k := range s.Keys {
		out = append(out, k.KID+":"+string(k.State))
	}
	return out
}

// TestWrongKEKWritesNothing: a manager with another key-encryption key fails with
// ErrWrongKEK and leaves every stored row as it was, even when a rotation is due.
func TestWrongKEKWritesNothing(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "k.db"))
	clk := &clock{t: t0}
	if _, err := newManager(t, st, newKEK(t), clk, nil).Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := st.ListKeys(ctx)
	v0, _ := st.KeySetVersion(ctx)

	clk.Set(t0.Add(10 * policy.RotationPeriod)) // everything is due
	bad := newManager(t, st, newKEK(t), clk, nil)
	for name, op := range map[string]func() error{
		"reconcile": func() error { _, err := bad.Reconcile(ctx); return err },
		"rotate":    func() error { _, err := bad.Rotate(ctx, true); return err },
		"revoke":    func() error { _, err := bad.Revoke(ctx, before[0].KID); return err },
	} {
		if err := op(); !errors.Is(err, rotation.ErrWrongKEK) {
			t.Errorf("%s with the wrong KEK: err = %v, want ErrWrongKEK", name, err)
		}
	}
	after, _ := st.ListKeys(ctx)
	v1, _ := st.KeySetVersion(ctx)
	if v0 != v1 || !reflect.DeepEqual(before, after) {
		t.Errorf("the wrong KEK changed stored keys (version %d→%d)", v0, v1)
	}
}

// TestConcurrentManagersRotateOnce: the server and a CLI (two managers on one
// database) reconciling at the same due instant rotate exactly once.
func TestConcurrentManagersRotateOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "k.db")
	kek := newKEK(t)
	clk := &clock{t: t0}
	var rotations atomic.Int32
	ms := []*rotation.Manager{
		newManager(t, openStore(t, path), kek, clk, &rotations),
		newManager(t, openStore(t, path), kek, clk, &rotations),
		newManager(t, openStore(t, path), kek, clk, &rotations),
	}
	if _, err := ms[0].Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(policy.RotationPeriod))
	var wg sync.WaitGroup
	snaps := make([]*rotation.Snapshot, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := m.Reconcile(ctx)
			if err != nil {
				t.Error(err)
			}
			snaps[i] = s
		}()
	}
	wg.Wait()
	if got := rotations.Load(); got != 2 { // the initial key, then one scheduled rotation
		t.Errorf("rotations = %d, want 2 (initial + one scheduled)", got)
	}
	for i, s := range snaps {
		if s != nil && !reflect.DeepEqual(kids(s), kids(snaps[0])) {
			t.Errorf("manager %d sees %v, manager 0 sees %v", i, kids(s), kids(snaps[0]))
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	ok := policy
	cases := []struct {
		name string
		mod  func(p *rotation.Policy)
	}{
		{"zero period", func(p *rotation.Policy) { p.RotationPeriod = 0 }},
		{"ahead > period", func(p *rotation.Policy) { p.PublishAhead = 2 * p.RotationPeriod }},
		{"no retention", func(p *rotation.Policy) { p.Retention = 0 }},
		{"1024 bits", func(p *rotation.Policy) { p.RSABits = 1024 }},
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		p := ok
		c.mod(&p)
		if p.Validate() == nil {
			t.Errorf("%s: Validate accepted it", c.name)
		}
	}
}
