package columns

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/keygate/keygate/store"
)

// DeviceColumns is the column list device-code queries select, in the order
// of DeviceRow.Dest.
const DeviceColumns = `id, user_code, client_id, scope, status, user_id, auth_time, poll_interval,
	created_at, expires_at, last_poll_at, decided_at, used_at, amr, family_id, access_jti, access_expires_at`

// DeviceRow is a store.DeviceCode in the column form of the device_codes
// table: the interval and times as nanoseconds.
type DeviceRow struct {
	ID, UserCode, ClientID, Scope, Status, UserID string
	Auth, Interval, Created, Expires              int64
	LastPoll, Decided, Used                       int64
	AMR                                           string // JSON array
	FamilyID, AccessJTI                           string
	AccessExpires                                 int64
}

// Dest is what a driver scans a row selected with DeviceColumns into.
func (r *DeviceRow) Dest() []any {
	return []any{&r.ID, &r.UserCode, &r.ClientID, &r.Scope, &r.Status, &r.UserID, &r.Auth, &r.Interval,
		&r.Created, &r.Expires, &r.LastPoll, &r.Decided, &r.Used, &r.AMR, &r.FamilyID, &r.AccessJTI, &r.AccessExpires}
}

// Args is the row's values in DeviceColumns order, for an INSERT.
func (r DeviceRow) Args() []any {
	return []any{r.ID, r.UserCode, r.ClientID, r.Scope, r.Status, r.UserID, r.Auth, r.Interval,
		r.Created, r.Expires, r.LastPoll, r.Decided, r.Used, r.AMR, r.FamilyID, r.AccessJTI, r.AccessExpires}
}

// DeviceToRow validates d for CreateDeviceCode (ID, UserCode, ClientID, a
// positive Interval and ExpiresAt are required, Status must be pending, text
// must be UTF-8) and converts it for binding.
func DeviceToRow(d store.DeviceCode) (DeviceRow, error) {
	switch {
	case d.ID == "" || d.UserCode == "" || d.ClientID == "":
		return DeviceRow{}, errors.New("empty id, user code or client id")
	case d.Status != store.DevicePending:
		return DeviceRow{}, fmt.Errorf("status %q, want %q", d.Status, store.DevicePending)
	case d.Interval <= 0:
		return DeviceRow{}, fmt.Errorf("interval %s is not positive", d.Interval)
	}
	for _, v := range []string{d.ID, d.UserCode, d.ClientID, d.Scope, d.UserID, d.FamilyID, d.AccessJTI} {
		if !utf8.ValidString(v) {
			return DeviceRow{}, fmt.Errorf("%q is not valid UTF-8", v)
		}
	}
	r := DeviceRow{ID: d.ID, UserCode: d.UserCode, ClientID: d.ClientID, Scope: d.Scope, Status: string(d.Status),
		UserID: d.UserID, Interval: int64(d.Interval), FamilyID: d.FamilyID, AccessJTI: d.AccessJTI}
	var err error
	if r.Expires, err = RequiredNanos(d.ExpiresAt); err != nil {
		return DeviceRow{}, fmt.Errorf("expires_at: %w", err)
	}
	if r.AMR, err = EncodeList(d.AMR); err != nil {
		return DeviceRow{}, fmt.Errorf("amr: %w", err)
	}
	if err := toNanosAll(
		timeField{"auth_time", d.AuthTime, &r.Auth},
		timeField{"created_at", d.CreatedAt, &r.Created},
		timeField{"last_poll_at", d.LastPollAt, &r.LastPoll},
		timeField{"decided_at", d.DecidedAt, &r.Decided},
		timeField{"used_at", d.UsedAt, &r.Used},
		timeField{"access_expires_at", d.AccessExpiresAt, &r.AccessExpires},
	); err != nil {
		return DeviceRow{}, err
	}
	return r, nil
}

// DeviceFromRow converts a scanned device_codes row back to a
// store.DeviceCode; an unknown status is an error.
func DeviceFromRow(r DeviceRow) (store.DeviceCode, error) {
	d := store.DeviceCode{ID: r.ID, UserCode: r.UserCode, ClientID: r.ClientID, Scope: r.Scope,
		Status: store.DeviceStatus(r.Status), UserID: r.UserID, AuthTime: FromNanos(r.Auth),
		Interval: time.Duration(r.Interval), CreatedAt: FromNanos(r.Created), ExpiresAt: FromNanos(r.Expires),
		LastPollAt: FromNanos(r.LastPoll), DecidedAt: FromNanos(r.Decided), UsedAt: FromNanos(r.Used),
		FamilyID: r.FamilyID, AccessJTI: r.AccessJTI, AccessExpiresAt: FromNanos(r.AccessExpires)}
	if !d.Status.Valid() {
		return store.DeviceCode{}, fmt.Errorf("device code %q: unknown status %q", r.ID, r.Status)
	}
	amr, err := DecodeList(r.AMR)
	if err != nil {
		return store.DeviceCode{}, fmt.Errorf("device code %q: amr: %w", r.ID, err)
	}
	d.AMR = amr
	return d, nil
}

// DecisionRow is what a DecideDeviceCode writes, in stored form.
type DecisionRow struct {
	Status   string
	Auth, At int64
	AMR      string // JSON array
}

// Decision is the status, authentication and time a DecideDeviceCode
// writes, validated.
func Decision(approve bool, userID string, authTime time.Time, amr []string, now time.Time) (DecisionRow, error) {
	var r DecisionRow
	var err error
	if userID == "" || !utf8.ValidString(userID) {
		return r, errors.New("empty or invalid user id")
	}
	if r.At, err = RequiredNanos(now); err != nil {
		return r, fmt.Errorf("now: %w", err)
	}
	if r.Auth, err = ToNanos(authTime); err != nil {
		return r, fmt.Errorf("auth_time: %w", err)
	}
	if r.AMR, err = EncodeList(amr); err != nil {
		return r, fmt.Errorf("amr: %w", err)
	}
	r.Status = string(store.DeviceDenied)
	if approve {
		r.Status = string(store.DeviceApproved)
	}
	return r, nil
}

// PollArgs is the stored forms of now and of the previous poll time prev
// that a RecordDevicePoll writes and guards on, validated with interval.
func PollArgs(prev, now time.Time, interval time.Duration) (at, before int64, err error) {
	if at, err = RequiredNanos(now); err != nil {
		return 0, 0, fmt.Errorf("now: %w", err)
	}
	before, err = ToNanos(prev)
	if err != nil || interval <= 0 {
		return 0, 0, fmt.Errorf("invalid prev (%v) or interval %s", err, interval)
	}
	return at, before, nil
}

// DeviceUnchanged explains why a guarded update of device code id failed
// with err. Unless err is the driver's noRows (sql.ErrNoRows,
// pgx.ErrNoRows) it is wrapped as is; otherwise the code is read back with
// get, in a statement of its own whose snapshot includes the update that
// won a race, if one did, and the error says what it found: no such code
// (store.ErrNotFound), or one in another state (store.ErrConflict). prefix
// names the backend, what the update.
func DeviceUnchanged(prefix, what, id string, err, noRows error, get func() (store.DeviceCode, error), now time.Time) error {
	if !errors.Is(err, noRows) {
		return fmt.Errorf("%s: %s device code %q: %w", prefix, what, id, err)
	}
	cur, gerr := get()
	switch {
	case errors.Is(gerr, store.ErrNotFound):
		return fmt.Errorf("%s: %s device code %q: %w", prefix, what, id, store.ErrNotFound)
	case gerr != nil:
		return fmt.Errorf("%s: %s device code %q: unchanged (reading why failed: %v): %w", prefix, what, id, gerr, store.ErrConflict)
	}
	why := "status " + string(cur.Status)
	switch {
	case !cur.UsedAt.IsZero():
		why = fmt.Sprintf("already used at %v", cur.UsedAt)
	case !now.Before(cur.ExpiresAt):
		why = fmt.Sprintf("expired at %v (now %v)", cur.ExpiresAt, now.UTC())
	}
	return fmt.Errorf("%s: %s device code %q: %s: %w", prefix, what, id, why, store.ErrConflict)
}

// RedemptionRow is what a RedeemDeviceCode writes, in stored form.
type RedemptionRow struct{ At, AccessExpires int64 }

// Redemption validates a redemption at now of what issued the access token
// accessJTI (required, UTF-8) expiring at accessExpiresAt (required) and the
// refresh family familyID (may be empty).
func Redemption(now time.Time, familyID, accessJTI string, accessExpiresAt time.Time) (RedemptionRow, error) {
	var r RedemptionRow
	var err error
	if r.At, err = RequiredNanos(now); err != nil {
		return r, fmt.Errorf("now: %w", err)
	}
	if accessJTI == "" || !utf8.ValidString(accessJTI) || !utf8.ValidString(familyID) {
		return r, errors.New("empty or invalid access jti or family id")
	}
	if r.AccessExpires, err = RequiredNanos(accessExpiresAt); err != nil {
		return r, fmt.Errorf("access_expires_at: %w", err)
	}
	return r, nil
}
