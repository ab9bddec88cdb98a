"use strict";
(() => {
  const q = new URLSearchParams(location.search);
  if (q.get("failed")) document.getElementById("failed").hidden = false;
  // Only the therapist's own pages, exactly as the server allows them (routes.safe_next): a
  // browser drops tabs and newlines and reads "\" as "/", so anything looser could leave the site.
  const next = q.get("next");
  if (next !== null && /^\/(?:t\/[A-Za-z0-9_-]{1,64})?$/.test(next)) {
    document.getElementById("next").value = next;
  }
})();
