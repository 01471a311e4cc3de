package store

import (
	"context"
	"time"
)

// Consent is a user's grant to a third-party client: the scopes the user
// allowed it on the consent page. A later request for scopes already granted
// needs no consent page; one for more asks again.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string  // granted, in the order first granted; nil for none
	CreatedAt time.Time // first granted
	UpdatedAt time.Time // last granted (scopes added)
}

// ConsentStore is the part of a Store that remembers the consents users gave
// to third-party clients.
type ConsentStore interface {
	// UpsertConsent stores c as the consent of c.UserID to c.ClientID: a new
	// one as given, or, if the pair already has one, its Scopes and UpdatedAt
	// replaced and its CreatedAt kept. UserID and ClientID are required.
	UpsertConsent(ctx context.Context, c Consent) error
	// GetConsent returns the consent of userID to clientID (ErrNotFound if
	// there is none).
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	// ListUserConsents returns every consent of userID, ordered by ClientID in
	// byte order; never nil.
	ListUserConsents(ctx context.Context, userID string) ([]Consent, error)
	// DeleteConsent deletes the consent of userID to clientID (ErrNotFound if
	// there is none).
	DeleteConsent(ctx context.Context, userID, clientID string) error
}
