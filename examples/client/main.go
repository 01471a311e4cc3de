// Command client gets a token from Keygate with the client_credentials grant,
// using only standard libraries (go-oidc for discovery, golang.org/x/oauth2 for
// the grant), and calls a protected API with it.
//
// Usage:
//
//	go run ./examples/client -issuer http://localhost:8080 -client-id billing -client-secret kgs_... \
//	    [-scope read] -url http://127.0.0.1:8090/api/secret
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "Keygate issuer URL")
	id := flag.String("client-id", "", "client id")
	secret := flag.String("client-secret", os.Getenv("KEYGATE_CLIENT_SECRET"), "client secret (or $KEYGATE_CLIENT_SECRET)")
	scope := flag.String("scope", "", "scopes, space-separated")
	url := flag.String("url", "", "the protected URL to call")
	flag.Parse()
	if *id == "" || *secret == "" || *url == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*issuer, *id, *secret, *scope, *url); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
}

func run(issuer, id, secret, scope, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return fmt.Errorf("discover %s: %w", issuer, err)
	}
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: provider.Endpoint().TokenURL,
		Scopes: strings.Fields(scope)}
	tok, err := cc.Token(ctx)
	if err != nil {
		return fmt.Errorf("get token: %w", err)
	}
	fmt.Printf("token expires %s\n", tok.Expiry.UTC().Format(time.RFC3339))
	resp, err := cc.Client(ctx).Get(url)
	if err != nil {
		return fmt.Errorf("call %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Printf("%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s answered %d", url, resp.StatusCode)
	}
	return nil
}
