package jwks_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/keygate/keygate/jwks"
)

// A resource server verifying Keygate access tokens on every request.
func ExampleMiddleware() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := jwks.NewVerifier(ctx, "https://id.example.com",
		jwks.Config{Audience: []string{"https://api.example.com"}})
	if err != nil {
		log.Fatal(err) // the issuer could not be reached at startup
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /orders", jwks.Middleware(v, jwks.MiddlewareConfig{Scopes: []string{"orders:read"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := jwks.ClaimsFromContext(r.Context())
			fmt.Fprintf(w, "orders of %s\n", c.Subject)
		})))
	log.Fatal(http.ListenAndServe(":8081", mux))
}

// The issuer verifying its own access tokens with the same checks, over the
// key set it publishes, without any HTTP round trip.
func ExampleNewLocalVerifier() {
	pub := jwks.NewPublisher(5 * time.Minute) // fed by the key rotation
	v, err := jwks.NewLocalVerifier(pub.Current, jwks.Config{
		Issuer:   "https://id.example.com",
		NoLeeway: true, // the issuer's clock is the reference
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = v.Verify(context.Background(), "a.b.c")
	fmt.Println(errors.Is(err, jwks.ErrMalformed))
	// Output: true
}

// Verifying a token by hand and telling the failures apart.
func ExampleVerifier_Verify() {
	var v *jwks.Verifier // from jwks.NewVerifier
	var token string     // from the request

	claims, err := v.Verify(context.Background(), token)
	switch {
	case errors.Is(err, jwks.ErrExpired):
		// ask the client to refresh its token
	case errors.Is(err, jwks.ErrInsufficientScope):
		// 403
	case err != nil:
		log.Printf("refused: %v", err) // the detail is for logs only
	default:
		fmt.Println(claims.Subject, claims.Scope)
	}
}
