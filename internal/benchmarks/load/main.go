// Command load drives a running Keygate's /token endpoint with concurrent
// workers and prints tokens/s and latency percentiles, for client_credentials
// and for refresh-token rotation in the same run (docs/BENCHMARKS.md,
// "Refresh under contention"). internal/benchmarks/load.sh starts a server on
// a temporary SQLite file and runs it:
//
//	go run ./internal/benchmarks/load -url http://127.0.0.1:18090 -c 32 -d 10s \
//	    -client bench -secret kgs_... -user bench -password '...'
//
// In the refresh phase every worker first gets its own refresh token with the
// password grant (not timed), then rotates its own chain: each request spends
// the token the previous one returned.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:18090", "the server's base URL")
	c := flag.Int("c", 32, "concurrent workers")
	d := flag.Duration("d", 10*time.Second, "duration of each phase")
	client := flag.String("client", "bench", "client id")
	secret := flag.String("secret", "", "client secret")
	user := flag.String("user", "bench", "username for the password grant")
	pass := flag.String("password", "", "password for the password grant")
	phases := flag.String("phases", "client_credentials,refresh_token", "phases to run, in order")
	freePort := flag.Bool("free-port", false, "print a free TCP port on 127.0.0.1 and exit")
	flag.Parse()
	if *freePort {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(1)
		}
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		return
	}

	tr := &http.Transport{MaxIdleConns: *c * 2, MaxIdleConnsPerHost: *c * 2}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	token := func(form url.Values) (map[string]any, error) {
		req, _ := http.NewRequest("POST", *base+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(*client), url.QueryEscape(*secret))
		res, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %s", res.Status, body)
		}
		var m map[string]any
		return m, json.Unmarshal(body, &m)
	}

	for _, phase := range strings.Split(*phases, ",") {
		setup, step, err := phaseSteps(phase, token, *user, *pass)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(2)
		}
		states := make([]string, *c)
		for i := range states {
			if states[i], err = setup(); err != nil {
				fmt.Fprintf(os.Stderr, "load: %s setup: %v\n", phase, err)
				os.Exit(1)
			}
		}
		runPhase(phase, states, *d, step)
	}
}

// phaseSteps returns how a worker of phase starts (its state: a refresh
// token for the refresh phase) and what one request is.
func phaseSteps(phase string, token func(url.Values) (map[string]any, error), user, pass string) (setup func() (string, error), step func(*string) error, err error) {
	switch phase {
	case "client_credentials":
		return func() (string, error) { return "", nil }, func(*string) error {
			_, err := token(url.Values{"grant_type": {"client_credentials"}})
			return err
		}, nil
	case "refresh_token":
		setup = func() (string, error) {
			m, err := token(url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
			if err != nil {
				return "", fmt.Errorf("password grant: %w", err)
			}
			rt, _ := m["refresh_token"].(string)
			if rt == "" {
				return "", fmt.Errorf("password grant returned no refresh_token")
			}
			return rt, nil
		}
		step = func(rt *string) error {
			m, err := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {*rt}})
			if err != nil {
				return err
			}
			next, _ := m["refresh_token"].(string)
			if next == "" {
				return fmt.Errorf("no refresh_token in the answer")
			}
			*rt = next
			return nil
		}
		return setup, step, nil
	}
	return nil, nil, fmt.Errorf("unknown phase %q", phase)
}

// runPhase runs one worker per state for d and prints throughput and
// latency percentiles. A refresh worker stops at its first error (its chain
// is broken); others go on.
func runPhase(phase string, states []string, d time.Duration, step func(*string) error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i := range states {
		wg.Go(func() {
			var mine []time.Duration
			var bad int
			var ferr error
			for ctx.Err() == nil {
				t := time.Now()
				if err := step(&states[i]); err != nil {
					bad++
					if ferr == nil {
						ferr = err
					}
					if phase == "refresh_token" {
						break
					}
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			if firstErr == nil {
				firstErr = ferr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	fmt.Printf("%-18s c=%d  %8.0f tokens/s  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (%d ok, %d errors in %.1fs)\n",
		phase, len(states), float64(len(lat))/elapsed.Seconds(),
		ms(pct(0.50)), ms(pct(0.99)), ms(pct(1)), len(lat), errs, elapsed.Seconds())
	if firstErr != nil {
		fmt.Printf("  first error: %v\n", firstErr)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
