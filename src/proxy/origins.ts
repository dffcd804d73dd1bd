/**
 * `Origin` checks (spec 2025-06-18+ "Security Warning": validate `Origin` against DNS rebinding; 2025-11-25:
 * an invalid `Origin` MUST get 403; SDK `createMcpExpressApp` does the same for a 127.0.0.1 host).
 */

/**
 * Whether a request's `Origin` is allowed: one of `allowed` when given; else, with `loopbackOnly`, an origin
 * on this machine; else any. Requests without `Origin` (non-browser clients) are never refused for it.
 */
export function originPolicy(allowed: readonly string[] | undefined, loopbackOnly: boolean): (origin: string) => boolean {
  if (allowed) {
    const set = new Set(allowed);
    return (origin) => set.has(origin);
  }
  return loopbackOnly ? isLoopbackOrigin : () => true;
}

/** `http://127.0.0.1:3000`, `http://localhost`, `http://[::1]:8080`: an origin on this machine. */
export function isLoopbackOrigin(origin: string): boolean {
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return false; // includes the opaque origin "null"
  }
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** True for a listen host that only this machine can reach. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}
