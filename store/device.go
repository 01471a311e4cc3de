package store

import (
	"context"
	"time"
)

// DeviceStatus is where a device authorization (RFC 8628) is in its life.
type DeviceStatus string

// The states of a device code: pending until the user decides, then
// approved or denied for good.
const (
	DevicePending  DeviceStatus = "pending"
	DeviceApproved DeviceStatus = "approved"
	DeviceDenied   DeviceStatus = "denied"
)

// Valid reports whether s is one of the three known states.
func (s DeviceStatus) Valid() bool {
	return s == DevicePending || s == DeviceApproved || s == DeviceDenied
}

// DeviceCode is an OAuth 2.0 device authorization (RFC 8628): a device
// polls the token endpoint with the device code while its user, on another
// screen, enters the user code and approves or denies. Neither code is
// stored: ID is the hex SHA-256 of the device code, UserCode the hex SHA-256
// of the normalized user code. It is short-lived and redeemed at most once.
type DeviceCode struct {
	ID         string // hex SHA-256 of the device code
	UserCode   string // hex SHA-256 of the normalized user code; unique
	ClientID   string
	Scope      string
	Status     DeviceStatus
	UserID     string        // who approved or denied; empty while pending
	AuthTime   time.Time     // when that user authenticated
	AMR        []string      // how that user authenticated (the session's AMR)
	Interval   time.Duration // the minimum time between two polls, grown by slow_down
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastPollAt time.Time // the last poll at the token endpoint; zero before the first
	DecidedAt  time.Time // when the user approved or denied; zero while pending
	UsedAt     time.Time // when tokens were issued; zero until then

	// Set when the code is redeemed, so that a second use can revoke them
	// (as for an authorization code, RFC 6749 §4.1.2).
	FamilyID        string    // refresh-token family issued; empty when none
	AccessJTI       string    // jti of the access token issued
	AccessExpiresAt time.Time // its expiry, for the deny list
}

// DeviceStore is the part of a Store that holds device authorizations
// (RFC 8628). Expired ones are deleted by PruneBrowser.
type DeviceStore interface {
	// CreateDeviceCode stores a pending device code. A taken ID or UserCode
	// is ErrConflict (the caller draws new codes). ID, UserCode, ClientID,
	// a positive Interval and ExpiresAt are required, and Status must be
	// DevicePending.
	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	// GetDeviceCode returns a device code by ID, in any state, expired or not.
	GetDeviceCode(ctx context.Context, id string) (DeviceCode, error)
	// GetDeviceCodeByUserCode returns the device code whose UserCode is
	// userCode, in any state, expired or not.
	GetDeviceCodeByUserCode(ctx context.Context, userCode string) (DeviceCode, error)
	// DecideDeviceCode approves (or denies) the device code id for userID,
	// who authenticated at authTime with the methods amr: Status, UserID,
	// AuthTime, AMR and DecidedAt = now, and returns the code as stored. Only a pending code
	// that expires after now can be decided: otherwise the error wraps
	// ErrConflict (ErrNotFound if there is no such code) and nothing is
	// written. Of concurrent decisions exactly one succeeds.
	DecideDeviceCode(ctx context.Context, id string, approve bool, userID string, authTime time.Time, amr []string, now time.Time) (DeviceCode, error)
	// RecordDevicePoll sets LastPollAt = now and Interval = interval on the
	// device code id, but only if its LastPollAt is still prev (zero for
	// none): of concurrent polls that read one prev, exactly one records;
	// the others get ErrConflict (ErrNotFound if there is no such code).
	RecordDevicePoll(ctx context.Context, id string, prev, now time.Time, interval time.Duration) error
	// RedeemDeviceCode spends the device code id (UsedAt = now), records
	// what was issued from it (the refresh-token family, empty for none, and
	// the access token's jti, required, and expiry) in the same step, and
	// returns it as stored. Only an approved, unused code that expires after
	// now can be redeemed: otherwise the error wraps ErrConflict (ErrNotFound
	// if there is no such code) and nothing is written. Of concurrent
	// redemptions, on however many replicas, exactly one succeeds.
	RedeemDeviceCode(ctx context.Context, id string, now time.Time, familyID, accessJTI string, accessExpiresAt time.Time) (DeviceCode, error)
}
