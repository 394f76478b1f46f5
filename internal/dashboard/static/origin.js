// origin.js: asks the node, before the page connects, whether it would
// accept a WebSocket from this page's origin (GET /origin-check). A
// browser cannot read why an upgrade was refused, so without the question a
// page reached by a host name the node does not allow would only say
// "reconnecting", forever. The answer is advice: anything unexpected (no
// answer, an old node, a proxy's page, a tampered body) is ignored and the
// page connects as it always did.

const checkWait = 3000; // ms the page waits for the answer before connecting anyway

// checkOrigin resolves to {origin, flag, env} when the node says it will
// refuse this page, and to null otherwise (allowed, or no usable answer).
export async function checkOrigin() {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), checkWait);
  try {
    const resp = await fetch(`origin-check?origin=${encodeURIComponent(location.origin)}`,
      { cache: "no-store", signal: stop.signal });
    if (!resp.ok) return null;
    return refusal(await resp.json());
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

// refusal accepts only a well-formed refusal of this very origin, with a
// setting that looks like one: the text shown is built from it.
function refusal(v) {
  if (v === null || typeof v !== "object" || v.allowed !== false) return null;
  if (v.origin !== location.origin.toLowerCase()) return null;
  if (typeof v.flag !== "string" || !/^--[a-z][a-z-]{0,40}$/.test(v.flag)) return null;
  if (typeof v.env !== "string" || !/^[A-Z][A-Z0-9_]{0,60}$/.test(v.env)) return null;
  return { origin: v.origin, flag: v.flag, env: v.env };
}

// refusalText says what the node will do and which setting changes it.
export function refusalText(r) {
  return `This node refuses WebSocket connections from pages at ${r.origin} (not an allowed origin). ` +
    `To allow it: ${r.flag} ${r.origin} (environment ${r.env}=${r.origin}; ` +
    `Helm chart: config.allowedOrigins, or ingress.hosts).`;
}
