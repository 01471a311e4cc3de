package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keygate/keygate/store/internal/columns"
)

// maxRotationBatch bounds how many rotations one transaction carries, so that
// one caller's turn at the writer stays short.
const maxRotationBatch = 64

// rotation is one RotateRefreshToken call waiting for the writer.
type rotation struct {
	ctx   context.Context // the caller's: checked before its turn, never passed to SQLite
	oldID string
	now   time.Time
	at    int64
	next  columns.RefreshRow
	done  chan error // buffered: the result, sent once
}

// rotations is the group commit of refresh-token rotations. Every rotation
// under contention pays the same fixed cost at the writer (BEGIN IMMEDIATE,
// the write-ahead-log append of the pages it dirtied, the shared-memory and
// file locks, COMMIT), and the pages they dirty are mostly the same ones (the
// table's last page, the subject and client indexes). So a caller queues its
// rotation, then waits for the writer's gate as every writer does; whoever
// gets the gate takes every queued rotation (at most maxRotationBatch) and
// runs them in one transaction, each under a savepoint: one whose link cannot
// be spent, or whose next ID is taken, is rolled back alone. A caller whose
// rotation another caller ran finds its result when its own turn comes (the
// other caller delivers every result before it leaves the gate), or sooner.
// The durability of each rotation is that of the commit that carried it; a
// failed commit fails every rotation in it, and none was written.
//
// database/sql has no group commit and SQLite none across statements of one
// connection, hence this.
type rotations struct {
	mu      sync.Mutex
	pending []*rotation
	batches atomic.Int64 // transactions run, for tests and diagnostics
}

// run queues r, waits until it has run (by this caller or another) and
// returns its result. If ctx ends while r is still queued, r is withdrawn and
// nothing is written.
func (q *rotations) run(ctx context.Context, s *Store, r *rotation) error {
	q.mu.Lock()
	q.pending = append(q.pending, r)
	q.mu.Unlock()
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if q.withdraw(r) {
			return fmt.Errorf("store/sqlite: rotate refresh token %q: %w", r.oldID, ctx.Err())
		}
		return <-r.done // taken by a caller at the writer: it finishes r
	case s.db.gate <- struct{}{}:
	}
	if batch := q.take(); len(batch) > 0 {
		s.runRotations(context.WithoutCancel(ctx), batch)
	}
	s.db.leave()
	return <-r.done // ran above, or by an earlier holder of the gate
}

// take removes and returns up to maxRotationBatch queued rotations, oldest
// first.
func (q *rotations) take() []*rotation {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(q.pending), maxRotationBatch)
	batch := slices.Clone(q.pending[:n])
	q.pending = slices.Delete(q.pending, 0, n)
	return batch
}

// withdraw removes r if it is still queued and reports whether it was.
func (q *rotations) withdraw(r *rotation) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.pending, r)
	if i < 0 {
		return false
	}
	q.pending = slices.Delete(q.pending, i, i+1)
	return true
}

// runRotations runs batch in one transaction on the writer's connection (the
// caller holds the gate) and delivers each rotation's result. ctx does not
// end with any one caller: cancelling a statement would make SQLite roll back
// the whole transaction, so a caller that gave up is skipped instead.
func (s *Store) runRotations(ctx context.Context, batch []*rotation) {
	results := make([]error, len(batch))
	defer func() {
		for i, r := range batch {
			r.done <- results[i]
		}
	}()
	fail := func(what string, err error) {
		for i, r := range batch {
			if results[i] == nil {
				results[i] = fmt.Errorf("store/sqlite: rotate refresh token %q: %s: %w", r.oldID, what, err)
			}
		}
	}
	s.rot.batches.Add(1)
	tx, err := s.db.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: see dsn
	if err != nil {
		fail("begin", err)
		return
	}
	// The prepared statements were prepared on the writer's one connection,
	// which the transaction has, so StmtContext reuses them; they are bound
	// to the transaction once for the whole batch.
	spend, insert := tx.StmtContext(ctx, s.spendRefresh), tx.StmtContext(ctx, s.insertRefresh)
	sp := savepoint{tx.StmtContext(ctx, s.savepoint), tx.StmtContext(ctx, s.rollbackTo), tx.StmtContext(ctx, s.release)}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = fmt.Errorf("store/sqlite: rotate refresh token %q: %w", r.oldID, err)
			continue
		}
		if err := sp.run(ctx, func() error { return r.rotate(ctx, tx, spend, insert) }, &results[i]); err != nil {
			tx.Rollback()
			fail("savepoint", err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail("commit", err)
	}
}

// savepoint is the savepoint statements of one group commit, bound to its
// transaction.
type savepoint struct{ begin, rollbackTo, release *sql.Stmt }

// run runs f under the savepoint and stores its error in *result; if f
// fails, what it wrote is rolled back and the rest of the transaction stands.
// The error returned is the savepoint's own failure, which leaves the
// transaction unusable.
func (sp savepoint) run(ctx context.Context, f func() error, result *error) error {
	if _, err := sp.begin.ExecContext(ctx); err != nil {
		return err
	}
	if *result = f(); *result != nil {
		if _, err := sp.rollbackTo.ExecContext(ctx); err != nil {
			return err
		}
	}
	_, err := sp.release.ExecContext(ctx)
	return err
}
