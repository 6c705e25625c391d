// stepguard verification page: the passkey buttons. The code form works without this script.
'use strict';
(function () {
  var main = document.querySelector('main[data-base]');
  if (!main) return;
  var base = main.getAttribute('data-base');
  var returnTo = main.getAttribute('data-return-to') || '/';
  var errorBox = document.getElementById('sg-error');
  var supported = typeof window.PublicKeyCredential === 'function' && typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function post(path, body) {
    return fetch(base + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(
        function (json) { return { ok: response.ok, json: json }; },
        function () { return { ok: response.ok, json: {} }; }
      );
    });
  }

  function failed(reply) {
    showError((reply.json && reply.json.detail) || 'The passkey could not be used. Try again or use another method.');
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  var section = document.getElementById('sg-passkey');
  if (!section || !supported) return;
  section.hidden = false;

  if (main.getAttribute('data-mode') === 'verify') {
    var challengeId = main.getAttribute('data-challenge');
    var useButton = document.getElementById('sg-passkey-button');
    useButton.focus();
    useButton.addEventListener('click', function () {
      busy(useButton, true);
      post('/webauthn/authenticate/options', { challenge_id: challengeId })
        .then(function (reply) {
          if (!reply.ok) throw reply;
          return navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(reply.json) });
        })
        .then(function (credential) {
          return post('/webauthn/authenticate', { challenge_id: challengeId, response: credential.toJSON() });
        })
        .then(function (reply) {
          if (!reply.ok) throw reply;
          window.location.assign(returnTo);
        })
        .catch(function (error) {
          busy(useButton, false);
          if (error && error.json) failed(error);
          else showError('The passkey was not used (' + (error && error.name ? error.name : 'cancelled') + '). Try again or use another method.');
        });
    });
  }

  if (main.getAttribute('data-mode') === 'register') {
    var ticket = main.getAttribute('data-ticket');
    var addButton = document.getElementById('sg-register-button');
    addButton.focus();
    addButton.addEventListener('click', function () {
      busy(addButton, true);
      post('/webauthn/register/options', { ticket: ticket })
        .then(function (reply) {
          if (!reply.ok) throw reply;
          return navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(reply.json) });
        })
        .then(function (credential) {
          return post('/webauthn/register', { ticket: ticket, response: credential.toJSON() });
        })
        .then(function (reply) {
          if (!reply.ok) throw reply;
          section.hidden = true;
          errorBox.hidden = true;
          var codes = reply.json.recovery_codes;
          if (codes && codes.length) {
            var list = document.getElementById('sg-code-list');
            codes.forEach(function (code) {
              var item = document.createElement('li');
              item.textContent = code;
              list.appendChild(item);
            });
            document.getElementById('sg-codes').hidden = false;
          }
          document.getElementById('sg-done').hidden = false;
          document.getElementById('sg-continue').focus();
        })
        .catch(function (error) {
          busy(addButton, false);
          if (error && error.json) failed(error);
          else showError('No passkey was added (' + (error && error.name ? error.name : 'cancelled') + ').');
        });
    });
  }
})();
