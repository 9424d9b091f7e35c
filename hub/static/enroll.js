// The enrollment QR's page (hub/static/enroll.html): shows the code and fingerprint from the
// link's fragment, and the command that approves the station. Nothing is sent anywhere.
"use strict";

(() => {
  // The hub's one-time codes (hub/provisioning/service.py CODE_ALPHABET, XXXX-XXXX) and the
  // station key's fingerprint without dashes (base32 of 15 bytes: 24 characters).
  const CODE = /^[ABCDEFGHJKMNPQRSTVWXYZ2-9]{4}-[ABCDEFGHJKMNPQRSTVWXYZ2-9]{4}$/;
  const FINGERPRINT = /^[A-Z2-7]{24}$/;

  const params = new URLSearchParams(window.location.hash.slice(1));
  const code = (params.get("code") || "").trim().toUpperCase();
  const fp = (params.get("fp") || "").trim().toUpperCase();
  if (!CODE.test(code) || !FINGERPRINT.test(fp)) {
    document.getElementById("enroll-error").hidden = false;
    return;
  }
  document.getElementById("enroll-code").textContent = code;
  document.getElementById("enroll-fingerprint").textContent = fp.match(/.{4}/g).join("-");
  document.getElementById("enroll-command").textContent =
    `kontaktstation admin approve ${code} --care-home CARE_HOME_ID --name "Stue 1"`;
  document.getElementById("enroll-details").hidden = false;
})();
