package columns

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/keygate/keygate/store"
)

// ConsentRow is a store.Consent in the column form of the consents table:
// scopes as a JSON array, times as nanoseconds.
type ConsentRow struct {
	UserID, ClientID, Scopes string
	Created, Updated         int64
}

// ConsentToRow validates c (a user and a client are required, as UTF-8) and
// converts it for binding.
func ConsentToRow(c store.Consent) (ConsentRow, error) {
	if c.UserID == "" || c.ClientID == "" {
		return ConsentRow{}, errors.New("empty user or client id")
	}
	if !utf8.ValidString(c.UserID) || !utf8.ValidString(c.ClientID) {
		return ConsentRow{}, errors.New("user or client id is not valid UTF-8")
	}
	r := ConsentRow{UserID: c.UserID, ClientID: c.ClientID}
	var err error
	if r.Scopes, err = EncodeList(c.Scopes); err != nil {
		return ConsentRow{}, fmt.Errorf("scopes: %w", err)
	}
	if err := toNanosAll(
		timeField{"created_at", c.CreatedAt, &r.Created},
		timeField{"updated_at", c.UpdatedAt, &r.Updated},
	); err != nil {
		return ConsentRow{}, err
	}
	return r, nil
}

// ConsentFromRow converts a scanned consents row back to a store.Consent.
func ConsentFromRow(r ConsentRow) (store.Consent, error) {
	scopes, err := DecodeList(r.Scopes)
	if err != nil {
		return store.Consent{}, fmt.Errorf("consent of %q to %q: scopes: %w", r.UserID, r.ClientID, err)
	}
	return store.Consent{UserID: r.UserID, ClientID: r.ClientID, Scopes: scopes,
		CreatedAt: FromNanos(r.Created), UpdatedAt: FromNanos(r.Updated)}, nil
}
