// Package columns converts Keygate's records to and from the column forms
// every SQL backend stores (Unix nanoseconds for times, JSON arrays for string
// lists, NULL for absent bytes), so that store/sqlite and store/postgres agree
// on them by construction rather than by copy.
package columns

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// ToNanos converts t to the stored form, Unix nanoseconds, with the zero
// time.Time as 0. Times that form cannot hold faithfully are refused rather than
// silently changed: those outside the years 1678 to 2262, and the Unix epoch
// itself, which would read back as the zero time.
func ToNanos(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	n := t.UnixNano()
	if !time.Unix(0, n).Equal(t) {
		return 0, fmt.Errorf("time %s is outside the storable range (1678 to 2262)", t)
	}
	if n == 0 {
		return 0, fmt.Errorf("time %s is the Unix epoch, which is stored as \"unset\"", t)
	}
	return n, nil
}

// FromNanos is the inverse of ToNanos, giving times in UTC.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// RequiredNanos converts a time that must be set (an expiry, a "now") to the
// stored form, refusing the zero time: stored as 0 it would mean "not set" and
// turn an expiry into "already expired" or a spend into "unused".
func RequiredNanos(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, errors.New("zero time")
	}
	return ToNanos(t)
}

// NilIfEmpty maps an empty byte slice to nil, so that it is bound as NULL and
// read back as nil: empty and absent mean the same for hashes and key sets.
func NilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// EncodeList renders a string slice as the JSON array stored for it; nil and
// empty both become "[]", so a column never holds JSON null. A string that is
// not valid UTF-8 is refused, because JSON would silently replace its bad bytes.
func EncodeList(v []string) (string, error) {
	if len(v) == 0 {
		return "[]", nil
	}
	for i, e := range v {
		if !utf8.ValidString(e) {
			return "", fmt.Errorf("element %d (%q) is not valid UTF-8", i, e)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// DecodeList is the inverse of EncodeList, giving nil for an empty array so
// that callers see one representation of "none".
func DecodeList(text string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, fmt.Errorf("stored value %q is not a JSON array of strings: %w", text, err)
	}
	if len(v) == 0 {
		return nil, nil
	}
	return v, nil
}

// Lease checks the arguments of an AcquireLease call the same way for every
// backend (non-empty name and holder, positive ttl, now set and storable) and
// returns now and the lease's expiry in the stored form. Errors name neither
// the backend nor the lease; callers wrap them.
func Lease(name, holder string, ttl time.Duration, now time.Time) (at, exp int64, err error) {
	if name == "" || holder == "" {
		return 0, 0, errors.New("empty name or holder")
	}
	if ttl <= 0 {
		return 0, 0, fmt.Errorf("ttl %v is not positive", ttl)
	}
	if at, err = RequiredNanos(now); err != nil {
		return 0, 0, fmt.Errorf("now: %w", err)
	}
	if exp, err = ToNanos(now.Add(ttl)); err != nil {
		return 0, 0, fmt.Errorf("expiry: %w", err)
	}
	return at, exp, nil
}
