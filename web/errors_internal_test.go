package web

import "testing"

func TestChallengeSyntax(t *testing.T) {
	for _, tc := range []struct {
		ch   challenge
		want string
	}{
		{challenge{Scheme: "Basic", Realm: realm}, `Basic realm="keygate"`},
		{challenge{Scheme: "Bearer", Realm: realm, Error: "insufficient_scope", Scope: "openid"},
			`Bearer realm="keygate", error="insufficient_scope", scope="openid"`},
		{challenge{Scheme: "Bearer", Realm: realm, Error: "invalid_token", Description: "token \"x\" is\\bad\n"},
			`Bearer realm="keygate", error="invalid_token", error_description="token 'x' is/bad?"`},
		{challenge{Scheme: "Bearer", Realm: `a"b\c`}, `Bearer realm="a\"b\\c"`},
		{challenge{Scheme: "Bearer"}, `Bearer`},
	} {
		if got := tc.ch.String(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.ch, got, tc.want)
		}
	}
}
