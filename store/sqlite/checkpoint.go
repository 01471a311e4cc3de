package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const (
	// checkpointInterval is how often the checkpointer looks for writes
	// since its last round; with none, it does nothing.
	checkpointInterval = time.Second
	// checkpointEveryTurns wakes the checkpointer sooner, after this many
	// turns at the writer (write transactions, group commits, single
	// statements), so that the log stays short under a stream of writes.
	checkpointEveryTurns = 256
	// restartFrames is the length of the log, in frames (pages: 16 MiB of
	// 4 KiB pages), from which a round ends with a RESTART checkpoint, so
	// that the next write starts the log over from its beginning.
	restartFrames = 4096
	// checkpointBusyMillis is the checkpointer connection's busy timeout:
	// how long its RESTART checkpoint, which holds this process's writer,
	// waits for another process's writer or for readers still on the log
	// before it gives up until the next round.
	checkpointBusyMillis = 20
)

// errCheckpointerStopped answers a round asked of a closed store.
var errCheckpointerStopped = errors.New("checkpointer stopped")

// checkpointer copies the write-ahead log into the database file in the
// background, on a connection of its own.
//
// SQLite's automatic checkpoint runs inside the commit that takes the log past
// 1,000 pages, on the committing connection; with one writer connection, every
// write queued behind that commit waited for the copy and its two fsyncs (the
// log's, then the database file's). So the writer runs with
// wal_autocheckpoint=0, and this goroutine runs a round when the writer has
// taken checkpointEveryTurns turns, or once a second when it has taken any.
// A round is a PASSIVE checkpoint beside the writer: it copies what the log
// holds when it starts and does the fsyncs without taking any lock that a
// writer or a reader needs.
//
// A PASSIVE checkpoint alone lets the log grow without bound under a stream
// of writes: the writer starts the log over only if, when a transaction
// begins, all of it is in the database file and no reader is still on it,
// and a checkpoint beside the writer never catches up with it. So once the
// log is restartFrames long, the round goes on with a RESTART checkpoint while
// it holds the writer's connection (no write of this process runs
// meanwhile): it copies what was committed since the PASSIVE one (little),
// waits up to checkpointBusyMillis for readers still on the log, and has the
// next write start the log over. The writer waits for that step only, about
// once per restartFrames pages written, where the automatic checkpoint made it
// wait for every checkpoint, every 1,000 pages. (It is not wholly clear of the
// PASSIVE checkpoint either: on ext4 its appends to the log wait while the
// fsync of the log commits the file system's journal. See docs/BENCHMARKS.md,
// "Checkpoints off the commit path".)
//
// With synchronous=NORMAL, a checkpoint's fsync of the log is also what makes
// the commits before it survive a power cut; so this bounds what a power cut
// can roll back to about the last second of writes, longer only while a long
// read (a backup) keeps the checkpoint from copying anything new (see README,
// "SQLite: concurrency and durability"). Other processes on the file (the CLI) run
// their own checkpointer; SQLite runs one checkpoint at a time, and the
// other's round finds little or nothing to do.
type checkpointer struct {
	db *sql.DB // one connection, checkpointBusyMillis busy timeout
	w  *writeDB
	// restartFrames is the log length from which a round restarts it
	// (restartFrames; tests set less).
	restartFrames int64
	ctx           context.Context // ends when close is called
	cancel        context.CancelFunc
	done          chan struct{} // closed when the goroutine has returned
	// seen is the writer's turn count when the last round began (the
	// goroutine's, then close's once the goroutine has returned).
	seen int64
	// req asks the goroutine for a round now, answered on the channel sent
	// (tests use it to watch the background path work).
	req chan chan roundResult
}

// walState is a checkpoint's answer: the log's length and how much of it is
// in the database file, in frames (pages).
type walState struct {
	frames, backfilled int64
}

type roundResult struct {
	st  walState
	err error
}

// startCheckpointer opens the checkpointer's connection to the database file
// abs and starts its goroutine, which w wakes (o: tests restart the log
// sooner).
func startCheckpointer(ctx context.Context, abs, syncLevel string, w *writeDB, o options) (*checkpointer, error) {
	restart := cmp.Or(o.restartFrames, restartFrames)
	db, err := sql.Open("sqlite", checkpointDSN(abs, syncLevel))
	if err != nil {
		return nil, fmt.Errorf("checkpointer: %w", err)
	}
	oneConn(db)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("checkpointer: %w", err)
	}
	c := &checkpointer{db: db, w: w, restartFrames: restart, done: make(chan struct{}), req: make(chan chan roundResult)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.seen = w.turns.Load()
	go c.loop()
	return c, nil
}

// checkpointDSN is the checkpointer's connection: the existing file, a short
// busy timeout, and the store's synchronous level (a checkpoint fsyncs as it
// says: NORMAL and FULL both sync the log and then the database file).
func checkpointDSN(abs, syncLevel string) string {
	return fileURI(abs, fmt.Sprintf("mode=rw&_pragma=busy_timeout(%d)&_pragma=synchronous(%s)", checkpointBusyMillis, syncLevel))
}

func (c *checkpointer) loop() {
	defer close(c.done)
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		var reply chan roundResult
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
			if c.w.turns.Load() == c.seen {
				continue
			}
		case <-c.w.kick:
		case reply = <-c.req:
		}
		c.seen = c.w.turns.Load()
		st, err := c.round(c.ctx)
		if reply != nil {
			reply <- roundResult{st, err}
		}
	}
}

// round runs the PASSIVE checkpoint and, if the log is long, the RESTART
// one holding the writer (see checkpointer). A failed round is not reported:
// the next one tries again, and a disk that fails writes fails the writes
// themselves.
func (c *checkpointer) round(ctx context.Context) (walState, error) {
	st, err := c.checkpoint(ctx, "PASSIVE")
	if err != nil || st.frames < c.restartFrames {
		return st, err
	}
	conn, err := c.w.conn(ctx)
	if err != nil {
		return st, fmt.Errorf("checkpoint: %w", err)
	}
	defer conn.Close()
	return c.checkpoint(ctx, "RESTART")
}

// checkpoint runs PRAGMA wal_checkpoint(mode) on the checkpointer's
// connection. Its busy column is not an error: another process's checkpoint
// ran (one at a time), or readers or a writer outlasted the busy timeout.
func (c *checkpointer) checkpoint(ctx context.Context, mode string) (walState, error) {
	var busy int
	var st walState
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &st.frames, &st.backfilled); err != nil {
		return st, fmt.Errorf("checkpoint (%s): %w", mode, err)
	}
	return st, nil
}

// now has the goroutine run a round and returns its answer.
func (c *checkpointer) now(ctx context.Context) (walState, error) {
	reply := make(chan roundResult, 1)
	select {
	case c.req <- reply:
	case <-c.done:
		return walState{}, errCheckpointerStopped
	case <-ctx.Done():
		return walState{}, ctx.Err()
	}
	r := <-reply
	return r.st, r.err
}

// close stops the goroutine, runs a last PASSIVE checkpoint if the writer
// took turns since the last round, so that what this process wrote is in the
// database file and fsynced when its Store closes (the CLI exiting beside a
// running server), and closes the connection. A later call does nothing.
func (c *checkpointer) close() error {
	select {
	case <-c.done:
		return nil
	default:
	}
	c.cancel()
	<-c.done
	var err error
	if c.w.turns.Load() != c.seen {
		_, err = c.checkpoint(context.Background(), "PASSIVE")
	}
	return errors.Join(err, c.db.Close())
}
