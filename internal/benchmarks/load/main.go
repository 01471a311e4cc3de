// Command load drives a running Keygate's /token endpoint with concurrent
// workers and prints tokens/s and latency percentiles, for client_credentials
// and for refresh-token rotation in the same run (docs/BENCHMARKS.md,
// "Refresh under contention"). internal/benchmarks/load.sh starts a server on
// a temporary SQLite file and runs it:
//
//	go run ./internal/benchmarks/load -url http://127.0.0.1:18090 -c 32 -d 10s \
//	    -client bench -secret kgs_... -user bench -password '...' -rounds 5 -pid 1234
//
// The password phase sends the password grant (an argon2id verification per
// request), for memory under a login flood.
//
// In the refresh phase every worker first gets its own refresh token with the
// password grant (not timed), then rotates its own chain: each request spends
// the token the previous one returned.
//
// Given the server's pid (Linux), each phase also reports the server's CPU
// time per token and the cores in use on average: the server's, the load
// generator's own, and the machine's idle ones.
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

	"github.com/prometheus/procfs"
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
	rounds := flag.Int("rounds", 1, "alternate the phases this many times, each for d/rounds per round")
	pid := flag.Int("pid", 0, "the server's process id: also report its CPU time per token (Linux /proc)")
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

	names := strings.Split(*phases, ",")
	runs := make([]*phaseRun, len(names))
	for i, phase := range names {
		setup, step, err := phaseSteps(phase, token, *user, *pass)
		if err != nil {
			fmt.Fprintln(os.Stderr, "load:", err)
			os.Exit(2)
		}
		r := &phaseRun{name: phase, states: make([]string, *c), step: step}
		for i := range r.states {
			if r.states[i], err = setup(); err != nil {
				fmt.Fprintf(os.Stderr, "load: %s setup: %v\n", phase, err)
				os.Exit(1)
			}
		}
		runs[i] = r
	}
	// Rounds alternate the phases (A B A B ...), so that a machine whose load
	// drifts during the run weighs on every phase alike.
	for range *rounds {
		for _, r := range runs {
			r.run(*d/time.Duration(*rounds), *pid)
		}
	}
	for _, r := range runs {
		r.print()
	}
	if rss := peakRSS(*pid); rss > 0 {
		fmt.Printf("server peak RSS (VmHWM) %.0f MiB\n", float64(rss)/(1<<20))
	}
	if len(runs) == 2 && runs[0].rate() > 0 {
		fmt.Printf("%s / %s = %.2f (tokens/s)", runs[1].name, runs[0].name, runs[1].rate()/runs[0].rate())
		if runs[0].cpu > 0 && runs[1].cpu > 0 {
			fmt.Printf(", %.2f (tokens per server CPU second)", runs[1].perCPU()/runs[0].perCPU())
		}
		fmt.Println()
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
	case "password": // argon2id on every request: the memory flood
		return func() (string, error) { return "", nil }, func(*string) error {
			_, err := token(url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}})
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

// phaseRun is one phase's workers and what its rounds measured.
type phaseRun struct {
	name     string
	states   []string // one per worker: its refresh token in the refresh phase
	step     func(*string) error
	lat      []time.Duration
	errs     int
	firstErr error
	elapsed  time.Duration
	cpu      time.Duration // the server's CPU time during the phase (-pid)
	own      time.Duration // this load generator's CPU time during the phase
	idle     float64       // the machine's idle CPU seconds during the phase
}

// run runs one worker per state for d, adding to r's latencies, errors,
// elapsed time and, given the server's pid, its CPU time. A refresh worker
// stops at its first error (its chain is broken); others go on.
func (r *phaseRun) run(d time.Duration, pid int) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	cpu0, own0, idle0 := cpuTime(pid), cpuTime(os.Getpid()), idleTime()
	start := time.Now()
	for i := range r.states {
		if r.states[i] == "" && r.name == "refresh_token" {
			continue // broken in an earlier round
		}
		wg.Go(func() {
			var mine []time.Duration
			var bad int
			var ferr error
			for ctx.Err() == nil {
				t := time.Now()
				if err := r.step(&r.states[i]); err != nil {
					bad++
					if ferr == nil {
						ferr = err
					}
					if r.name == "refresh_token" {
						r.states[i] = ""
						break
					}
					continue
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			r.lat = append(r.lat, mine...)
			r.errs += bad
			if r.firstErr == nil {
				r.firstErr = ferr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed += time.Since(start)
	r.cpu += cpuTime(pid) - cpu0
	r.own += cpuTime(os.Getpid()) - own0
	r.idle += idleTime() - idle0
}

func (r *phaseRun) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

func (r *phaseRun) perCPU() float64 { return float64(len(r.lat)) / r.cpu.Seconds() }

// print writes throughput and latency percentiles over all rounds.
func (r *phaseRun) print() {
	lat := r.lat
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	fmt.Printf("%-18s c=%d  %8.0f tokens/s  p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (%d ok, %d errors in %.1fs)",
		r.name, len(r.states), r.rate(), ms(pct(0.50)), ms(pct(0.99)), ms(pct(1)), len(lat), r.errs, r.elapsed.Seconds())
	if r.cpu > 0 && len(lat) > 0 {
		fmt.Printf("  server CPU %.3f ms/token", ms(r.cpu)/float64(len(lat)))
		// Cores busy on average: the server's, this generator's, and the
		// machine's idle ones. A server that does not use the cores the
		// generator leaves it is waiting (for its writer, say) rather
		// than working.
		sec := r.elapsed.Seconds()
		fmt.Printf("  cores: server %.2f load %.2f idle %.2f", r.cpu.Seconds()/sec, r.own.Seconds()/sec, r.idle/sec)
	}
	fmt.Println()
	if r.firstErr != nil {
		fmt.Printf("  first error: %v\n", r.firstErr)
	}
}

// fromProc reads a figure of process pid from /proc (Linux, through
// prometheus/procfs); the zero value without a pid or when it cannot be read.
func fromProc[T any](pid int, read func(procfs.Proc) (T, error)) T {
	var zero T
	if pid <= 0 {
		return zero
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return zero
	}
	v, err := read(p)
	if err != nil {
		return zero
	}
	return v
}

// cpuTime is the user+system CPU time of process pid, 0 when unknown.
func cpuTime(pid int) time.Duration {
	return fromProc(pid, func(p procfs.Proc) (time.Duration, error) {
		st, err := p.Stat()
		return time.Duration(st.CPUTime() * float64(time.Second)), err
	})
}

// idleTime is the machine's idle CPU time so far in seconds, all cores
// together (/proc/stat idle and iowait), 0 when unknown.
func idleTime() float64 {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0
	}
	st, err := fs.Stat()
	if err != nil {
		return 0
	}
	return st.CPUTotal.Idle + st.CPUTotal.Iowait
}

// peakRSS is the peak resident set size (VmHWM) of process pid in bytes, 0
// when unknown.
func peakRSS(pid int) uint64 {
	return fromProc(pid, func(p procfs.Proc) (uint64, error) {
		st, err := p.NewStatus()
		return st.VmHWM, err
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
