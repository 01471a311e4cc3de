package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// checkpointSooner wakes the checkpointer after every kick writer turns
// instead of checkpointEveryTurns, and restarts the log from restart frames
// instead of restartFrames, so that a test sees many rounds in few writes.
func checkpointSooner(kick, restart int64) Option {
	return func(o *options) { o.kickEvery, o.restartFrames = kick, restart }
}

// walSize is the size of the write-ahead log file of the database at path.
func walSize(t *testing.T, path string) int64 {
	t.Helper()
	return fileSize(t, path+"-wal")
}

// fileSize is the size of the file at path.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// rotateChain rotates chain w from link from to link to.
func rotateChain(ctx context.Context, s *Store, w, from, to int, now time.Time) error {
	for i := from; i < to; i++ {
		if err := s.RotateRefreshToken(ctx, chainLink(w, i, now).ID, now, chainLink(w, i+1, now)); err != nil {
			return err
		}
	}
	return nil
}

// TestCheckpointRoundStartsLogOver runs writes and, after each hundred, a
// round of the checkpointer's goroutine: each round leaves the whole log in
// the database file, and the log file stays the size of one step's writes
// (the writer starts it over), where without checkpoints (the writer's
// automatic ones are off) it would grow with every step.
func TestCheckpointRoundStartsLogOver(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	s := openTemp(t, path)
	ctx, now := t.Context(), time.Now()
	if err := s.CreateRefreshToken(ctx, chainLink(0, 0, now)); err != nil {
		t.Fatal(err)
	}
	const steps, perStep = 20, 100
	var first int64
	for step := range steps {
		if err := rotateChain(ctx, s, 0, step*perStep, (step+1)*perStep, now); err != nil {
			t.Fatal(err)
		}
		st, err := s.ckpt.now(ctx)
		if err != nil {
			t.Fatalf("round %d: %v", step, err)
		}
		if st.frames == 0 || st.backfilled != st.frames {
			t.Errorf("round %d: %d of %d frames of the log in the database file, want all (and some)", step, st.backfilled, st.frames)
		}
		if step == 0 {
			first = walSize(t, path)
		}
	}
	if last := walSize(t, path); last > 2*first {
		t.Errorf("log file grew from %d to %d bytes over %d rounds: not started over", first, last, steps)
	}
	if _, err := s.GetRefreshToken(ctx, chainLink(0, steps*perStep, now).ID); err != nil {
		t.Errorf("last link: %v", err)
	}
}

// TestCheckpointerBoundsLogUnderLoad rotates refresh chains from several
// goroutines while others read them, with no pause in the writes, and leaves
// the checkpointer to its own wake-ups: the log file stays a fraction of what
// the writes add to it. A PASSIVE checkpoint alone never lets the writer
// start the log over in such a stream (readers always hold a place in the
// log), so this needs the round's RESTART.
func TestCheckpointerBoundsLogUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	s := openTemp(t, path, checkpointSooner(64, 256))
	ctx, now := t.Context(), time.Now()
	const writers, readers, perWriter = 8, 2, 500
	for w := range writers {
		if err := s.CreateRefreshToken(ctx, chainLink(w, 0, now)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var rwg, wwg sync.WaitGroup
	for r := range readers {
		rwg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.GetRefreshToken(ctx, chainLink(r%writers, 0, now).ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for w := range writers {
		wwg.Go(func() {
			if err := rotateChain(ctx, s, w, 0, perWriter, now); err != nil {
				t.Error(err)
			}
		})
	}
	wwg.Wait()
	close(stop)
	rwg.Wait()

	dbSize := fileSize(t, path)
	st, err := s.ckpt.now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.backfilled != st.frames {
		t.Errorf("after the writes, %d of %d frames in the database file", st.backfilled, st.frames)
	}
	// These writes make a log of 45-60 MB when nothing starts it over
	// (PASSIVE checkpoints only), 4-6 MB with the round's RESTART.
	const bound = 16 << 20
	if got := walSize(t, path); got > bound {
		t.Errorf("log file %d bytes after %d rotations (database file %d bytes), want at most %d", got, writers*perWriter, dbSize, bound)
	}
}

// TestCloseStopsCheckpointer closes a store (the CLI, exiting) while another
// stays open on the file (the server): Close stops the checkpointer, whose
// last checkpoint has put what the closing store wrote into the database file
// itself, before any other process checkpoints.
func TestCloseStopsCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keygate.db")
	openTemp(t, path) // the server, open throughout
	cli, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := cli.CreateRefreshToken(t.Context(), chainLink(0, 0, now)); err != nil {
		t.Fatal(err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cli.ckpt.done:
	default:
		t.Error("the checkpointer's goroutine still runs after Close")
	}
	if _, err := cli.ckpt.now(t.Context()); !errors.Is(err, errCheckpointerStopped) {
		t.Errorf("round after Close: %v, want errCheckpointerStopped", err)
	}
	if err := cli.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}

	// immutable=1 reads the database file alone, without the log.
	db, err := sql.Open("sqlite", fileURI(path, "mode=ro&immutable=1"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM refresh_tokens WHERE id = ?`, chainLink(0, 0, now).ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("the closed store's write is not in the database file (%d rows)", n)
	}
}
