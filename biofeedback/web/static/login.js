"use strict";
(() => {
  const q = new URLSearchParams(location.search);
  if (q.get("failed")) document.getElementById("failed").hidden = false;
  const next = q.get("next");
  if (next && next.startsWith("/") && !next.startsWith("//")) document.getElementById("next").value = next;
})();
