package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// Device authorizations (RFC 8628): the PostgreSQL side of
// store.DeviceStore, behaving exactly as the SQLite backend's device.go
// does. Every write that can race another is a single guarded UPDATE: it
// locks the row, and a concurrent one waits for the lock and re-checks its
// guard against the committed row (READ COMMITTED), so of concurrent
// decisions, polls or redemptions of one code, on any number of replicas,
// exactly one succeeds.

// CreateDeviceCode stores a new pending device code. A taken id or user
// code fails with an error wrapping store.ErrConflict.
func (s *Store) CreateDeviceCode(ctx context.Context, d store.DeviceCode) error {
	return insert(ctx, s, fmt.Sprintf("create device code %q", d.ID), d, columns.DeviceToRow,
		`INSERT INTO device_codes (`+columns.DeviceColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		"id", d.ID, "user code", d.UserCode, "client id", d.ClientID, "scope", d.Scope, "user id", d.UserID,
		"family id", d.FamilyID, "access jti", d.AccessJTI)
}

// GetDeviceCode returns the device code with the given ID, or an error
// wrapping store.ErrNotFound.
func (s *Store) GetDeviceCode(ctx context.Context, id string) (store.DeviceCode, error) {
	return getRow(ctx, s, "get device code", id, `SELECT `+columns.DeviceColumns+` FROM device_codes WHERE id = $1`, scanDevice)
}

// GetDeviceCodeByUserCode returns the device code with the given user code
// digest, or an error wrapping store.ErrNotFound.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (store.DeviceCode, error) {
	return getRow(ctx, s, "get device code by user code", userCode,
		`SELECT `+columns.DeviceColumns+` FROM device_codes WHERE user_code = $1`, scanDevice)
}

// DecideDeviceCode approves or denies a pending, unexpired device code.
func (s *Store) DecideDeviceCode(ctx context.Context, id string, approve bool, userID string, authTime time.Time, amr []string, now time.Time) (store.DeviceCode, error) {
	d, err := columns.Decision(approve, userID, authTime, amr, now)
	if err == nil {
		err = checkText("user id", userID)
	}
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("store/postgres: decide device code %q: %w", id, err)
	}
	return guardedUpdate(ctx, s, "decide", id, now, scanDevice, `UPDATE device_codes
		SET status = $1, user_id = $2, auth_time = $3, decided_at = $4, amr = $6
		WHERE id = $5 AND status = 'pending' AND expires_at > $4
		RETURNING `+columns.DeviceColumns,
		d.Status, userID, d.Auth, d.At, id, d.AMR)
}

// RecordDevicePoll records a poll if the code's last poll is still prev.
func (s *Store) RecordDevicePoll(ctx context.Context, id string, prev, now time.Time, interval time.Duration) error {
	at, before, err := columns.PollArgs(prev, now, interval)
	if err != nil {
		return fmt.Errorf("store/postgres: record poll of device code %q: %w", id, err)
	}
	_, err = guardedUpdate(ctx, s, "record poll of", id, now, scanID, `UPDATE device_codes SET last_poll_at = $1, poll_interval = $2
		WHERE id = $3 AND last_poll_at = $4 RETURNING id`,
		at, int64(interval), id, before)
	return err
}

// RedeemDeviceCode spends an approved, unused, unexpired device code and
// records what was issued from it, in one guarded statement.
func (s *Store) RedeemDeviceCode(ctx context.Context, id string, now time.Time, familyID, accessJTI string, accessExpiresAt time.Time) (store.DeviceCode, error) {
	r, err := columns.Redemption(now, familyID, accessJTI, accessExpiresAt)
	if err == nil {
		err = checkText("family id", familyID, "access jti", accessJTI)
	}
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("store/postgres: redeem device code %q: %w", id, err)
	}
	return guardedUpdate(ctx, s, "redeem", id, now, scanDevice, `UPDATE device_codes
		SET used_at = $1, family_id = $3, access_jti = $4, access_expires_at = $5
		WHERE id = $2 AND status = 'approved' AND used_at = 0 AND expires_at > $1
		RETURNING `+columns.DeviceColumns,
		r.At, id, familyID, accessJTI, r.AccessExpires)
}

// guardedUpdate runs query, an UPDATE of device code id guarded by its
// WHERE and RETURNING what scan reads, and explains through
// columns.DeviceUnchanged why it failed if it did (reading the code again
// under the same context); what names the update.
func guardedUpdate[T any](ctx context.Context, s *Store, what, id string, now time.Time, scan func(pgx.Row) (T, error), query string, args ...any) (T, error) {
	var zero T
	if !storable(id) {
		return zero, fmt.Errorf("store/postgres: %s device code %q: %w", what, id, store.ErrNotFound)
	}
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	v, err := scan(s.pool.QueryRow(ctx, query, args...))
	if err != nil {
		get := func() (store.DeviceCode, error) { return s.GetDeviceCode(ctx, id) }
		return zero, columns.DeviceUnchanged("store/postgres", what, id, err, pgx.ErrNoRows, get, now)
	}
	return v, nil
}

// scanID reads the id a guarded update returns.
func scanID(r pgx.Row) (string, error) {
	var id string
	err := r.Scan(&id)
	return id, err
}

// scanDevice reads one device_codes row selected with columns.DeviceColumns.
func scanDevice(r pgx.Row) (store.DeviceCode, error) {
	return columns.Scan(r.Scan, columns.DeviceFromRow)
}
