// usage: node dpop.mjs ISSUER_URL CLIENT_ID USERNAME PASSWORD RESOURCE_URL
// Gets a DPoP-bound access token (RFC 9449) from Keygate with openid-client's
// built-in DPoP support: the password grant of a public client, then a
// refresh (the refresh token is bound to the same key), then RESOURCE_URL and
// Keygate's /userinfo with the refreshed token. openid-client signs a fresh
// proof for every request and answers server nonces (use_dpop_nonce) itself.
import * as client from 'openid-client'

if (process.argv.length !== 7) {
  console.error('usage: node dpop.mjs ISSUER_URL CLIENT_ID USERNAME PASSWORD RESOURCE_URL')
  process.exit(2)
}
const [issuer, clientId, username, password, resource] = process.argv.slice(2)
// allowInsecureRequests: the test issuer is http://127.0.0.1; drop it for an https issuer.
const insecure = new URL(issuer).protocol === 'http:' ? [client.allowInsecureRequests] : []
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), { execute: insecure })

const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
const first = await client.genericGrantRequest(config, 'password', { username, password, scope: 'openid profile' }, { DPoP })
console.log('token_type', first.token_type)
const tokens = await client.refreshTokenGrant(config, first.refresh_token, undefined, { DPoP })
console.log('refreshed', tokens.token_type)

const res = await client.fetchProtectedResource(config, tokens.access_token, new URL(resource), 'GET', undefined, undefined, { DPoP })
console.log('resource', res.status, (await res.text()).trim())
const info = await client.fetchUserInfo(config, tokens.access_token, client.skipSubjectCheck, { DPoP })
console.log('userinfo', JSON.stringify(info))

// Another key (a thief's) cannot refresh the bound refresh token.
const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'))
try {
  await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: thief })
  console.log('thief refresh succeeded')
} catch (err) {
  console.log('thief refresh', err.error ?? err.code, err.error_description ?? err.message)
}
