package web_test

// The attacks of the issue "Abuse-proof": forwarding headers believed from
// anyone (a fresh login-throttle budget per guess, a bypassed signup limiter,
// logs recording an address of the attacker's choice), attacker-chosen
// limiter keys growing memory without bound, and the operations surface
// (/metrics, /admin). Every case runs against the real stack (kgtest).

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/kgtest"
	"github.com/keygate/keygate/throttle"
	"github.com/keygate/keygate/web"
)

// abuseIPBurst is the per-IP login budget in these tests; the per-user one is
// large, so only the per-IP limit can answer 429.
const abuseIPBurst = 5

func newAbuseEnv(t *testing.T, logs *kgtest.LogBuffer, trusted ...string) *atkEnv {
	t.Helper()
	var nets []*net.IPNet
	for _, c := range trusted {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatal(err)
		}
		nets = append(nets, n)
	}
	return newAtkEnv(t, func(o *kgtest.Options) {
		o.IPLimits = throttle.Limits{Burst: abuseIPBurst, Every: time.Hour}
		o.UserLimits = throttle.Limits{Burst: 10_000, Every: time.Millisecond}
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
		o.Web = func(c *web.Config) { c.TrustedProxies = nets }
	})
}

// guess sends one wrong password for alice (the password grant) with hdr.
func (e *atkEnv) guess(t *testing.T, hdr map[string]string) int {
	form := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong guess"}}
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": basicAuth("app", atkAppSecret)}
	for k, v := range hdr {
		h[k] = v
	}
	r := e.do(t, "POST", "/token", h, strings.NewReader(form.Encode()))
	if r.status != 400 && r.status != 429 {
		t.Errorf("wrong password: %d %s", r.status, r.body)
	}
	return r.status
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	return r.Header.Get("Authorization")
}

// flood sends n wrong passwords from workers goroutines, the headers of the
// i-th from hdr(i), and counts the 429s.
func (e *atkEnv) flood(t *testing.T, n, workers int, hdr func(i int) map[string]string) (throttled int) {
	var next, n429 atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				if e.guess(t, hdr(i)) == 429 {
					n429.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(n429.Load())
}

// requestIPs are the remote_ip values of the request log lines for path.
func requestIPs(logs, path string) map[string]int {
	ips := map[string]int{}
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "msg=request") || !strings.Contains(line, " path="+path+" ") {
			continue
		}
		_, ip, _ := strings.Cut(line, "remote_ip=")
		ip, _, _ = strings.Cut(ip, " ")
		ips[ip]++
	}
	return ips
}

func TestAttackForwardedForRotation(t *testing.T) {
	t.Run("no trusted proxies: the TCP peer", xffNoTrustedProxies)
	t.Run("behind a trusted proxy: the rightmost untrusted hop", xffBehindTrustedProxy)
	t.Run("IPv6: every address of one /64 shares a budget", xffIPv6Prefix)
	t.Run("trusted proxies configured, peer not one of them", xffUntrustedPeer)
}

// The floods of TestAttackForwardedForRotation: xffGuesses wrong passwords
// from xffWorkers goroutines. At most one request per worker can pass the
// throttle's check while an earlier failure is still being hashed.
const (
	xffGuesses, xffWorkers = 40, 8
	xffMinThrottled        = xffGuesses - abuseIPBurst - xffWorkers
)

// signupsRefused sends 30 signups, the i-th with X-Forwarded-For xff(i), and
// counts the 429s.
func (e *atkEnv) signupsRefused(t *testing.T, xff func(i int) string) int {
	var n429 int
	for i := range 3 * 10 {
		r := e.do(t, "POST", "/users", map[string]string{"X-Forwarded-For": xff(i)}, nil)
		if r.status == 429 {
			n429++
		}
	}
	return n429
}

// xffNoTrustedProxies: with no trusted proxy, forwarding headers are ignored:
// the login throttle and the signup limiter count the TCP peer, and the log
// records it.
func xffNoTrustedProxies(t *testing.T) {
	var logs kgtest.LogBuffer
	e := newAbuseEnv(t, &logs)
	got := e.flood(t, xffGuesses, xffWorkers, func(i int) map[string]string {
		return map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d", i),
			"X-Real-IP": fmt.Sprintf("203.0.113.%d", i)}
	})
	if got < xffMinThrottled {
		t.Errorf("%d of %d guesses with a rotating X-Forwarded-For were throttled, want at least %d", got, xffGuesses, xffMinThrottled)
	}
	ips := requestIPs(logs.String(), "/token")
	if len(ips) != 1 || ips["127.0.0.1"] != xffGuesses {
		t.Errorf("request log addresses %v, want only the TCP peer 127.0.0.1 (%d times)", ips, xffGuesses)
	}
	if l := logs.String(); strings.Contains(l, "198.51.100.") || strings.Contains(l, "203.0.113.") {
		t.Error("the log records an address from a forwarding header")
	}

	// The signup limiter: the same address, whatever the headers.
	if n429 := e.signupsRefused(t, func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }); n429 < 15 {
		t.Errorf("signups with a rotating X-Forwarded-For: %d of 30 refused, want at least 15", n429)
	}
}

// xffBehindTrustedProxy: behind trusted proxies the client is the rightmost
// untrusted hop, not what the client wrote itself; another client behind the
// same proxy has its own budget.
func xffBehindTrustedProxy(t *testing.T) {
	var logs kgtest.LogBuffer
	// The test client is the proxy; 10.0.0.0/8 is a second proxy tier.
	e := newAbuseEnv(t, &logs, "127.0.0.0/8", "::1/128", "10.0.0.0/8")
	// The client writes its own X-Forwarded-For; the proxies append the
	// address they saw (198.51.100.7) and their own (10.1.2.3).
	got := e.flood(t, xffGuesses, xffWorkers, func(i int) map[string]string {
		return map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d, 198.51.100.7, 10.1.2.3", i),
			"X-Real-IP": fmt.Sprintf("203.0.113.%d", i)}
	})
	if got < xffMinThrottled {
		t.Errorf("%d of %d guesses with a rotating leftmost hop were throttled, want at least %d", got, xffGuesses, xffMinThrottled)
	}
	// Another client behind the same proxy has its own budget.
	if s := e.guess(t, map[string]string{"X-Forwarded-For": "198.51.100.8"}); s != 400 {
		t.Errorf("another client behind the proxy: %d, want 400 (its own budget)", s)
	}
	ips := requestIPs(logs.String(), "/token")
	if ips["198.51.100.7"] != xffGuesses || ips["198.51.100.8"] != 1 || len(ips) != 2 {
		t.Errorf("request log addresses %v, want 198.51.100.7 ×%d and 198.51.100.8 ×1", ips, xffGuesses)
	}
	if strings.Contains(logs.String(), "203.0.113.") {
		t.Error("the log records the address the client wrote itself")
	}
}

// xffIPv6Prefix: every address of one IPv6 /64 shares the login and signup
// budgets; the next /64 has its own.
func xffIPv6Prefix(t *testing.T) {
	var logs kgtest.LogBuffer
	e := newAbuseEnv(t, &logs, "127.0.0.0/8", "::1/128")
	// A host with a /64 picks a new address for every guess.
	got := e.flood(t, xffGuesses, xffWorkers, func(i int) map[string]string {
		return map[string]string{"X-Forwarded-For": fmt.Sprintf("2001:db8:7:7:%x:%x:%x:%x", i, i*7, i*13, i*31)}
	})
	if got < xffMinThrottled {
		t.Errorf("%d of %d guesses from rotating addresses of one /64 were throttled, want at least %d", got, xffGuesses, xffMinThrottled)
	}
	// The neighbouring /64 is another customer, with its own budget.
	if s := e.guess(t, map[string]string{"X-Forwarded-For": "2001:db8:7:8::1"}); s != 400 {
		t.Errorf("a guess from the next /64: %d, want 400 (its own budget)", s)
	}
	// The signup limiter counts the /64 too.
	if n429 := e.signupsRefused(t, func(i int) string { return fmt.Sprintf("2001:db8:9:9::%x", i+1) }); n429 < 15 {
		t.Errorf("signups from rotating addresses of one /64: %d of 30 refused, want at least 15", n429)
	}
}

// xffUntrustedPeer: with trusted proxies configured, a peer that is not one of
// them is taken as the client, whatever it forwards.
func xffUntrustedPeer(t *testing.T) {
	var logs kgtest.LogBuffer
	e := newAbuseEnv(t, &logs, "192.0.2.0/24")
	got := e.flood(t, xffGuesses, xffWorkers, func(i int) map[string]string {
		return map[string]string{"X-Forwarded-For": fmt.Sprintf("198.51.100.%d, 192.0.2.1", i)}
	})
	if got < xffMinThrottled {
		t.Errorf("%d of %d guesses were throttled, want at least %d", got, xffGuesses, xffMinThrottled)
	}
	if ips := requestIPs(logs.String(), "/token"); len(ips) != 1 || ips["127.0.0.1"] != xffGuesses {
		t.Errorf("request log addresses %v, want only the TCP peer", ips)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestAttackSignupLimiterMemory(t *testing.T) {
	t.Run("100k distinct addresses", func(t *testing.T) {
		clock := kgtest.NewClock(atkT0)
		allow, size := web.NewSignupStore(clock.Now)
		before := heapInUse()
		var busy int
		for i := range 100_000 {
			ip := fmt.Sprintf("2001:db8:%x:%x::%x", i>>16, i&0xffff, i)
			if ok, err := allow(ip); !ok && err != nil {
				busy++
			}
			if n := size(); n > web.SignupMaxAddrs {
				t.Fatalf("%d addresses tracked after %d, cap %d", n, i+1, web.SignupMaxAddrs)
			}
		}
		grown := int64(heapInUse()) - int64(before)
		t.Logf("100k distinct addresses: %d tracked (cap %d), %d refused as new, heap +%.1f MiB",
			size(), web.SignupMaxAddrs, busy, float64(grown)/(1<<20))
		// A few hundred bytes per entry; 1 KiB each is generous, and
		// 100k uncapped entries would exceed it.
		if limit := int64(web.SignupMaxAddrs) << 10; grown > limit {
			t.Errorf("heap grew %d bytes, want at most %d", grown, limit)
		}
		if busy != 100_000-web.SignupMaxAddrs {
			t.Errorf("%d new addresses refused, want %d", busy, 100_000-web.SignupMaxAddrs)
		}
		// A tracked address keeps its exact budget: 9 more, then refused.
		first := "2001:db8:0:0::0"
		for i := range 10 {
			ok, _ := allow(first)
			if ok != (i < 9) {
				t.Fatalf("tracked address, attempt %d: allowed %v", i+2, ok)
			}
		}
		// Once the flood's buckets have refilled they are dropped.
		clock.Advance(time.Minute)
		if ok, err := allow("192.0.2.1"); !ok || err != nil || size() != 1 {
			t.Errorf("after the flood: allowed %v (%v), %d tracked, want a fresh address allowed and 1 tracked", ok, err, size())
		}
		if ok, _ := allow(first); !ok {
			t.Error("a refilled address is refused")
		}
	})

	t.Run("long forwarding headers over HTTP", func(t *testing.T) {
		s := kgtest.Start(t, kgtest.Options{})
		const n, kb = 1000, 16
		before := heapInUse()
		for i := range n {
			hdr := map[string]string{"X-Forwarded-For": fmt.Sprintf("%d", i) + strings.Repeat("f", kb<<10)}
			if r := send(t, s.URL, request{path: "/users", hdr: hdr}); r.status != 429 && r.status != 415 {
				t.Fatalf("signup: %s", r)
			}
		}
		grown := int64(heapInUse()) - int64(before)
		tracked := web.SignupStoreLen(s.Handler())
		t.Logf("%d signups with distinct %d KiB X-Forwarded-For: %d tracked, heap +%.1f MiB", n, kb, tracked, float64(grown)/(1<<20))
		if tracked != 1 {
			t.Errorf("%d addresses tracked, want 1 (the TCP peer)", tracked)
		}
		if limit := int64(n*kb<<10) / 4; grown > limit {
			t.Errorf("heap grew %d bytes, want at most %d", grown, limit)
		}
	})
}

func TestMetricsListener(t *testing.T) {
	s := kgtest.Start(t, kgtest.Options{Web: func(c *web.Config) { c.MetricsElsewhere = true }})
	if r := send(t, s.URL, request{method: "GET", path: "/metrics"}); r.status != 404 {
		t.Errorf("/metrics on the main listener: %d, want 404", r.status)
	}
	m := httptest.NewServer(s.Handler().(*web.Server).MetricsHandler())
	defer m.Close()
	r := send(t, m.URL, request{method: "GET", path: "/metrics"})
	if r.status != 200 || !strings.Contains(string(r.body), "keygate_keys{") {
		t.Errorf("/metrics on the metrics listener: %d %.200s", r.status, r.body)
	}
	// The default keeps /metrics on the main listener.
	d := kgtest.Start(t, kgtest.Options{})
	if r := send(t, d.URL, request{method: "GET", path: "/metrics"}); r.status != 200 {
		t.Errorf("/metrics on the main listener by default: %d", r.status)
	}
}

// TestAdminAccessRule is README's rule for /admin: an access token of an
// admin user that carries the admin scope, always; the bootstrap secret
// admin.token only when it is configured; nothing else.
func TestAdminAccessRule(t *testing.T) {
	for _, secret := range []string{"", adminToken} {
		e := newAtkEnv(t, func(o *kgtest.Options) { o.AdminToken = secret })
		cases := []struct {
			name  string
			token string
			want  int
		}{
			{"no token", "", 401},
			{"the bootstrap secret", adminToken, map[bool]int{true: 200, false: 401}[secret != ""]},
			{"admin user, admin scope", e.password(t, "root", atkRootPW, "admin").AccessToken, 200},
			{"admin user, no admin scope", e.password(t, "root", atkRootPW, "openid").AccessToken, 403},
			{"plain user, admin scope", e.password(t, "alice", atkAlicePW, "admin").AccessToken, 403},
		}
		for _, c := range cases {
			hdr := map[string]string{}
			if c.token != "" {
				hdr["Authorization"] = "Bearer " + c.token
			}
			if r := e.do(t, "GET", "/admin/keys", hdr, nil); r.status != c.want {
				t.Errorf("admin.token set %v, %s: %d %s, want %d", secret != "", c.name, r.status, r.body, c.want)
			}
		}
	}
}
