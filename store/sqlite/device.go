package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/keygate/keygate/store"
	"github.com/keygate/keygate/store/internal/columns"
)

// Device authorizations (RFC 8628): the SQLite side of store.DeviceStore.
// Every write that can race another is a single statement guarded by its
// WHERE, so concurrent requests, in this process or another, cannot both
// decide, record one poll or redeem one code.

// CreateDeviceCode stores a new pending device code. A taken id or user
// code fails with an error wrapping store.ErrConflict.
func (s *Store) CreateDeviceCode(ctx context.Context, d store.DeviceCode) error {
	return insert(ctx, s, fmt.Sprintf("create device code %q", d.ID), d, columns.DeviceToRow,
		`INSERT INTO device_codes (`+columns.DeviceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
}

// GetDeviceCode returns the device code with the given ID, or an error
// wrapping store.ErrNotFound.
func (s *Store) GetDeviceCode(ctx context.Context, id string) (store.DeviceCode, error) {
	return getRow(ctx, s, "get device code", id, `SELECT `+columns.DeviceColumns+` FROM device_codes WHERE id = ?`, scanDevice)
}

// GetDeviceCodeByUserCode returns the device code with the given user code
// digest, or an error wrapping store.ErrNotFound.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (store.DeviceCode, error) {
	return getRow(ctx, s, "get device code by user code", userCode,
		`SELECT `+columns.DeviceColumns+` FROM device_codes WHERE user_code = ?`, scanDevice)
}

// DecideDeviceCode approves or denies a pending, unexpired device code.
func (s *Store) DecideDeviceCode(ctx context.Context, id string, approve bool, userID string, authTime time.Time, amr []string, now time.Time) (store.DeviceCode, error) {
	d, err := columns.Decision(approve, userID, authTime, amr, now)
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("store/sqlite: decide device code %q: %w", id, err)
	}
	return guardedUpdate(ctx, s, "decide", id, now, scanDevice, `UPDATE device_codes
		SET status = ?, user_id = ?, auth_time = ?, amr = ?, decided_at = ?
		WHERE id = ? AND status = 'pending' AND expires_at > ?
		RETURNING `+columns.DeviceColumns,
		d.Status, userID, d.Auth, d.AMR, d.At, id, d.At)
}

// RecordDevicePoll records a poll if the code's last poll is still prev.
func (s *Store) RecordDevicePoll(ctx context.Context, id string, prev, now time.Time, interval time.Duration) error {
	at, before, err := columns.PollArgs(prev, now, interval)
	if err != nil {
		return fmt.Errorf("store/sqlite: record poll of device code %q: %w", id, err)
	}
	_, err = guardedUpdate(ctx, s, "record poll of", id, now, scanID, `UPDATE device_codes SET last_poll_at = ?, poll_interval = ?
		WHERE id = ? AND last_poll_at = ? RETURNING id`,
		at, int64(interval), id, before)
	return err
}

// RedeemDeviceCode spends an approved, unused, unexpired device code and
// records what was issued from it, in one guarded statement.
func (s *Store) RedeemDeviceCode(ctx context.Context, id string, now time.Time, familyID, accessJTI string, accessExpiresAt time.Time) (store.DeviceCode, error) {
	r, err := columns.Redemption(now, familyID, accessJTI, accessExpiresAt)
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("store/sqlite: redeem device code %q: %w", id, err)
	}
	return guardedUpdate(ctx, s, "redeem", id, now, scanDevice, `UPDATE device_codes
		SET used_at = ?, family_id = ?, access_jti = ?, access_expires_at = ?
		WHERE id = ? AND status = 'approved' AND used_at = 0 AND expires_at > ?
		RETURNING `+columns.DeviceColumns,
		r.At, familyID, accessJTI, r.AccessExpires, id, r.At)
}

// guardedUpdate runs query, an UPDATE of device code id guarded by its
// WHERE and RETURNING what scan reads, and explains through
// columns.DeviceUnchanged why it failed if it did (reading the code again
// under the same context); what names the update.
func guardedUpdate[T any](ctx context.Context, s *Store, what, id string, now time.Time, scan func(rowScanner) (T, error), query string, args ...any) (T, error) {
	var zero T
	v, err := scan(s.db.QueryRowContext(ctx, query, args...))
	if err != nil {
		get := func() (store.DeviceCode, error) { return s.GetDeviceCode(ctx, id) }
		return zero, columns.DeviceUnchanged("store/sqlite", what, id, err, sql.ErrNoRows, get, now)
	}
	return v, nil
}

// scanID reads the id a guarded update returns.
func scanID(r rowScanner) (string, error) {
	var id string
	err := r.Scan(&id)
	return id, err
}

func scanDevice(r rowScanner) (store.DeviceCode, error) {
	return columns.Scan(r.Scan, columns.DeviceFromRow)
}
