// Keygate passkeys: the glue between the WebAuthn browser API and the
// server's JSON options and HTML forms. The server sends the options of
// navigator.credentials.create/get with binary fields as base64url; the API
// wants ArrayBuffers, and its answer goes back into a hidden form field as
// JSON with base64url fields again. Pages work without this script: the
// passkey controls stay hidden.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function fromB64url(s) {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
  }

  // options posts to url with the form's CSRF token and returns the
  // publicKey options, binary fields decoded.
  async function options(url, form) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.elements.csrf.value },
      body: "{}",
    });
    const body = await res.json();
    if (!res.ok) {
      throw new Error(body.error || res.statusText);
    }
    const pk = body.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    if (pk.user) {
      pk.user.id = fromB64url(pk.user.id);
    }
    if (pk.excludeCredentials) {
      pk.excludeCredentials = decodeDescriptors(pk.excludeCredentials);
    }
    if (pk.allowCredentials) {
      pk.allowCredentials = decodeDescriptors(pk.allowCredentials);
    }
    return pk;
  }

  // credentialJSON is the PublicKeyCredential as the server parses it.
  function credentialJSON(cred) {
    const r = cred.response;
    const out = {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: { clientDataJSON: toB64url(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      if (r.userHandle) {
        out.response.userHandle = toB64url(r.userHandle);
      }
    }
    return JSON.stringify(out);
  }

  function showError(form, message) {
    const p = form.querySelector(".passkey-error");
    p.textContent = message;
    p.hidden = false;
  }

  // wire runs the ceremony when form is submitted: get the options, ask the
  // authenticator, put its answer in the credential field, submit for real.
  function wire(form, url, ceremony, failure) {
    form.hidden = false;
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        const publicKey = await options(url, form);
        const cred = await ceremony({ publicKey: publicKey });
        form.elements.credential.value = credentialJSON(cred);
        form.submit();
      } catch (err) {
        button.disabled = false;
        showError(form, failure + " (" + err.message + ")");
      }
    });
  }

  const login = document.getElementById("passkey-login");
  if (login) {
    wire(login, "/login/passkey/options", function (o) { return navigator.credentials.get(o); },
      "No passkey was used.");
  }
  const add = document.getElementById("passkey-add");
  if (add) {
    wire(add, "/account/passkeys/options", function (o) { return navigator.credentials.create(o); },
      "The passkey was not created.");
  }
})();
