package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/store"
)

// chainLink is link i of the refresh chain of worker w.
func chainLink(w, i int, now time.Time) store.RefreshToken {
	return store.RefreshToken{ID: fmt.Sprintf("w%d-%d", w, i), FamilyID: fmt.Sprintf("fam%d", w),
		ClientID: "c", Subject: "s", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// TestConcurrentRotationsAndReads runs many goroutines rotating their own
// refresh chains through the one writer connection while others read through
// the read pool and write single statements: every call succeeds (no
// SQLITE_BUSY, no deadlock between readers and the writer) and every chain
// ends where it should.
func TestConcurrentRotationsAndReads(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "keygate.db"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	now := time.Now()
	const workers, rotations = 32, 20
	for w := range workers {
		if err := s.CreateRefreshToken(ctx, chainLink(w, 0, now)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*workers)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range rotations {
				if err := s.RotateRefreshToken(ctx, chainLink(w, i, now).ID, now, chainLink(w, i+1, now)); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range rotations {
				if _, err := s.GetRefreshToken(ctx, chainLink(w, 0, now).ID); err != nil {
					errs <- err
					return
				}
				if _, err := s.IsAccessTokenRevoked(ctx, fmt.Sprint("jti", w, i)); err != nil {
					errs <- err
					return
				}
				if err := s.RevokeAccessToken(ctx, fmt.Sprint("jti", w, i), now.Add(time.Hour)); err != nil {
					errs <- err
					return
				}
				if _, err := s.GetClient(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
					errs <- fmt.Errorf("GetClient of an unknown client: %v, want ErrNotFound", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		rt, err := s.GetRefreshToken(ctx, chainLink(w, rotations, now).ID)
		if err != nil || !rt.UsedAt.IsZero() {
			t.Errorf("worker %d: last link %+v, %v; want an unspent link", w, rt, err)
		}
		if ok, err := s.IsAccessTokenRevoked(ctx, fmt.Sprint("jti", w, 0)); !ok || err != nil {
			t.Errorf("worker %d: revoked jti reads as %v, %v", w, ok, err)
		}
	}
}

// TestWriterQueueHonoursContext checks that a write waiting for the writer
// gives up when its context ends, and that the writer is free again after.
func TestWriterQueueHonoursContext(t *testing.T) {
	s := openTemp(t, filepath.Join(t.TempDir(), "keygate.db"))
	tx, err := s.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = s.RevokeAccessToken(ctx, "jti", time.Now().Add(time.Hour))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("write while the writer is busy: %v, want context.DeadlineExceeded", err)
	}
	// Reads do not queue behind the writer.
	if _, err := s.IsAccessTokenRevoked(t.Context(), "jti"); err != nil {
		t.Errorf("read while the writer is busy: %v", err)
	}
	tx.Rollback()
	if err := s.RevokeAccessToken(t.Context(), "jti", time.Now().Add(time.Hour)); err != nil {
		t.Errorf("write after the writer is free: %v", err)
	}
}

// BenchmarkRotateRefresh measures RotateRefreshToken alone (no signature,
// no HTTP): serial, one goroutine rotating one chain, beside parallel, 32
// goroutines (b.RunParallel) each rotating its own chain, which all queue for
// the one writer. p99-ms is the 99th percentile of one call's latency.
//
//	go test -run '^$' -bench RotateRefresh -count 3 ./store/sqlite/
func BenchmarkRotateRefresh(b *testing.B) {
	now := time.Now()
	b.Run("serial", func(b *testing.B) {
		s := openBench(b)
		ctx := context.Background()
		if err := s.CreateRefreshToken(ctx, chainLink(0, 0, now)); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, 1024)
		i := 0
		for b.Loop() {
			t := time.Now()
			if err := s.RotateRefreshToken(ctx, chainLink(0, i, now).ID, now, chainLink(0, i+1, now)); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t))
			i++
		}
		reportP99(b, lat)
	})
	for _, c := range []struct {
		name string
		opts []Option
	}{{"parallel-32", nil}, {"parallel-32-synchronous-full", []Option{SynchronousFull()}}} {
		b.Run(c.name, func(b *testing.B) { benchParallelRotate(b, now, c.opts...) })
	}
}

// benchParallelRotate runs 32 goroutines each rotating its own chain.
func benchParallelRotate(b *testing.B, now time.Time, opts ...Option) {
	s := openBench(b, opts...)
	ctx := context.Background()
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	var next int
	var all []time.Duration
	before := s.rot.batches.Load()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		w := next
		next++
		mu.Unlock()
		if err := s.CreateRefreshToken(ctx, chainLink(w, 0, now)); err != nil {
			b.Error(err)
			return
		}
		var lat []time.Duration
		for i := 0; pb.Next(); i++ {
			t := time.Now()
			if err := s.RotateRefreshToken(ctx, chainLink(w, i, now).ID, now, chainLink(w, i+1, now)); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	reportP99(b, all)
	b.ReportMetric(float64(b.N)/float64(s.rot.batches.Load()-before), "rotations/tx")
}

// openBench opens a new database for b and closes it when b ends.
func openBench(b *testing.B, opts ...Option) *Store {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "keygate.db"), opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func reportP99(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100])/float64(time.Millisecond), "p99-ms")
}
