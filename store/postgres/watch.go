package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrClosed is returned by WatchKeySet when the Store is closed.
var ErrClosed = errors.New("store/postgres: store closed")

// Timings of WatchKeySet. Variables, so that tests can shorten them.
var (
	// watchConnectTimeout bounds connecting, LISTEN and the liveness check.
	watchConnectTimeout = 10 * time.Second
	// watchIdle is how long the listener waits for a notification before it
	// checks that its connection still works: a connection silently dropped
	// by the network (no reset) would otherwise be waited on for ever.
	watchIdle = 30 * time.Second
	// The pause before reconnecting after a failure doubles from
	// watchMinBackoff up to watchMaxBackoff, and is reset by a successful
	// LISTEN.
	watchMinBackoff = 100 * time.Millisecond
	watchMaxBackoff = 30 * time.Second
)

// WatchKeySet calls fn whenever the key set may have changed, until ctx is done
// or the Store is closed, so that a replica reloads its keys at once after
// another replica (or the CLI) rotates them instead of at its next poll.
//
// It listens for the notifications ApplyKeyChange sends (on KeySetChannel) on
// a connection of its own, outside the pool, and calls fn once per
// notification, one call at a time, in the calling goroutine; fn should be
// quick, typically reading KeySetVersion and reloading if it moved. fn is
// also called every time the listener has (re)connected and LISTEN is in
// place, the first time included, because notifications sent while nothing
// was listening are lost: a caller that loads the key set, then starts
// WatchKeySet, misses nothing. Notifications are not filtered by schema, so
// when several Keygate installations share a database (in different schemas)
// fn is also called for the others' changes; it is a hint to re-read, never
// a statement that something changed.
//
// A lost connection is reopened with exponential backoff (100 ms doubling up
// to 30 s), and each failure is logged with slog.Default at level Warn; polling
// KeySetVersion remains the fallback that bounds how stale a replica can be.
//
// WatchKeySet returns only when it stops: with ctx's error (or cause) once ctx
// is done, or ErrClosed once the Store is closed.
func (s *Store) WatchKeySet(ctx context.Context, fn func()) error {
	if fn == nil {
		return errors.New("store/postgres: watch key set: nil callback")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-s.closed:
			cancel(ErrClosed)
		case <-ctx.Done():
		}
	}()

	backoff := watchMinBackoff
	for {
		err := s.listen(ctx, fn, func() { backoff = watchMinBackoff })
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		// Jitter, so replicas that lost the database together do not
		// reconnect in lockstep.
		pause := backoff/2 + rand.N(backoff/2+1)
		slog.Default().Warn("store/postgres: key-set listener failed; reconnecting",
			"store", s.desc, "err", err, "retry_in", pause)
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(pause):
		}
		backoff = min(2*backoff, watchMaxBackoff)
	}
}

// listen opens a connection, LISTENs on KeySetChannel, calls connected and fn,
// and then calls fn for every notification until ctx is done or the
// connection fails; it returns why it stopped.
func (s *Store) listen(ctx context.Context, fn, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, watchConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	// The channel name is a constant identifier, so it can be spelled into
	// the statement (LISTEN takes no parameters).
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{KeySetChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cancel()
	connected()
	fn() // whatever changed while nothing was listening

	for {
		wctx, cancel := context.WithTimeout(ctx, watchIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if n != nil && s.ownsNotification(n.Payload) {
			fn()
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Idle for a while: check the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, watchConnectTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("liveness check: %w", err)
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// ownsNotification reports whether a KeySetChannel payload announces a change
// to this Store's schema ("<schema>:<version>"; the schema may itself contain
// a colon, the version never does).
func (s *Store) ownsNotification(payload string) bool {
	i := strings.LastIndexByte(payload, ':')
	return i >= 0 && payload[:i] == s.schema
}
