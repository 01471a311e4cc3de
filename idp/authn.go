package idp

import (
	"slices"
	"strings"
)

// How a user authenticated travels with their login exactly as auth_time
// does: the browser session records it (store.Session.AMR), and every
// authorization code, refresh token and device code issued from the session
// copies it, so that the ID tokens and access tokens they yield carry "amr"
// (RFC 8176 authentication method references) and "acr" (an authentication
// context class, OIDC Core §2) saying how strong the login was.
//
// A login method (password, TOTP, a passkey, ...) ends in one call:
// Provider.StartSession(ctx, user, methods), with the methods the user just
// proved, e.g.
//
//	[]string{idp.AMRPassword}                                   a password alone
//	[]string{idp.AMRPassword, idp.AMROTP, idp.AMRMultiFactor}   password and TOTP
//	[]string{idp.AMRHardwareKey, idp.AMRUser, idp.AMRMultiFactor} a passkey with user verification
//
// StartSession always makes a new session (a new cookie value), authenticated
// now; ACRFor derives the context class from the methods.

// The RFC 8176 authentication method reference values Keygate records.
const (
	AMRPassword    = "pwd"  // a password
	AMROTP         = "otp"  // a one-time code: TOTP (RFC 6238) or a recovery code
	AMRHardwareKey = "hwk"  // proof of possession of a hardware-protected key (a security key, a device-bound passkey)
	AMRSoftwareKey = "swk"  // proof of possession of a software-protected key (a synced passkey)
	AMRUser        = "user" // user presence/verification test (a passkey's user verification)
	AMRMultiFactor = "mfa"  // more than one factor was used
)

// The authentication context classes (acr) Keygate issues and accepts in
// acr_values, weakest first. Each satisfies a request for any weaker one.
const (
	// ACRPassword: one factor (a password).
	ACRPassword = "urn:keygate:acr:pwd"
	// ACRMultiFactor: two factors (amr holds "mfa"), e.g. a password and a
	// TOTP code.
	ACRMultiFactor = "urn:keygate:acr:mfa"
	// ACRPhishingResistant: multi-factor with a key bound to this origin
	// (amr holds "mfa" and "hwk" or "swk"): a passkey or security key with
	// user verification, which a look-alike site cannot relay.
	ACRPhishingResistant = "urn:keygate:acr:phr"
)

// ACRValuesSupported are the acr values, weakest first, for discovery.
var ACRValuesSupported = []string{ACRPassword, ACRMultiFactor, ACRPhishingResistant}

// acrLevel is the strength of an acr value: its index in ACRValuesSupported
// plus one, or 0 for a value Keygate does not know.
func acrLevel(acr string) int { return slices.Index(ACRValuesSupported, acr) + 1 }

// MethodsOf returns the methods of a login as stored: an empty list (a row
// written before methods were recorded, when a password was the only way
// in) is a password login.
func MethodsOf(amr []string) []string {
	if len(amr) == 0 {
		return []string{AMRPassword}
	}
	return amr
}

// ACRFor is the authentication context class of a login with the methods
// amr (see MethodsOf for an empty list).
func ACRFor(amr []string) string {
	amr = MethodsOf(amr)
	switch {
	case slices.Contains(amr, AMRMultiFactor) && (slices.Contains(amr, AMRHardwareKey) || slices.Contains(amr, AMRSoftwareKey)):
		return ACRPhishingResistant
	case slices.Contains(amr, AMRMultiFactor):
		return ACRMultiFactor
	}
	return ACRPassword
}

// maxACRValues bounds acr_values, which the sealed login request carries.
const maxACRValues = 512

// requiredACR is the weakest of the known acr values requested (OIDC Core
// §3.1.2.1: acr_values lists acceptable values in order of preference; any
// of them will do, so the weakest known one is what a login must reach).
// Unknown values are ignored; "" means none was asked for.
func requiredACR(acrValues string) string {
	best := ""
	for _, v := range strings.Fields(acrValues) {
		if l := acrLevel(v); l > 0 && (best == "" || l < acrLevel(best)) {
			best = v
		}
	}
	return best
}

// Satisfies reports whether a login with the methods amr is strong enough
// for the context class acr ("" is any login).
func Satisfies(amr []string, acr string) bool {
	return acr == "" || acrLevel(ACRFor(amr)) >= acrLevel(acr)
}
