import type { AddressInfo } from 'node:net';

/**
 * The base URL other replicas forward to: `advertiseUrl` (checked: `http(s)://HOST[:PORT]`, no path), or
 * `http://<bound address>:<port>`. @throws Error if unset while bound to all interfaces.
 */
export function advertisedUrl(advertiseUrl: string | undefined, addr: AddressInfo): string {
  if (advertiseUrl !== undefined) return checkAdvertiseUrl(advertiseUrl);
  if (addr.address === '0.0.0.0' || addr.address === '::') {
    throw new Error('owner affinity: listening on all interfaces, so the address other replicas reach this one at must be given (--advertise-url)');
  }
  return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
}

/** Validates an advertised URL and returns it without a trailing slash. @throws Error */
export function checkAdvertiseUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`--advertise-url must be an http(s)://HOST:PORT URL, got "${value}"`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
    throw new Error(`--advertise-url must be http(s)://HOST:PORT without path, query or credentials, got "${value}"`);
  }
  return `${u.protocol}//${u.host}`;
}
