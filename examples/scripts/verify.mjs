// usage: node verify.mjs ISSUER_URL TOKEN [AUDIENCE]
// Verifies a Keygate access token with npm's jose (createRemoteJWKSet + jwtVerify)
// and prints its claims; exits 1 with the reason if it is invalid. RS256, ES256
// and EdDSA are accepted, each only with a key of its type.
import { createRemoteJWKSet, jwtVerify } from 'jose'

const [issuer, token, audience] = process.argv.slice(2)
if (!issuer || !token) {
  console.error('usage: node verify.mjs ISSUER_URL TOKEN [AUDIENCE]')
  process.exit(2)
}
const jwks = createRemoteJWKSet(new URL(issuer + '/jwks'))
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    issuer,
    audience,
    algorithms: ['RS256', 'ES256', 'EdDSA'],
    typ: 'at+jwt',
  })
  console.log(JSON.stringify({ kid: protectedHeader.kid, ...payload }))
} catch (err) {
  console.error(`invalid: ${err.code ?? ''} ${err.message}`)
  process.exit(1)
}
