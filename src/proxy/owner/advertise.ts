import { networkInterfaces } from 'node:os';
import type { AddressInfo } from 'node:net';
import { checkAdvertiseUrl } from '@mcp-migrate/runtime';

export { checkAdvertiseUrl };

/**
 * The base URL other replicas forward to: `advertiseUrl` (checked: `http(s)://HOST[:PORT]`, no path);
 * else `http://<bound address>:<port>`. Bound to all interfaces: the loopback address for a replica on
 * its own (`alone`: no shared registry, nobody forwards to it), otherwise the host's one non-internal
 * address (IPv4 if it has one: a container's or pod's address). @throws Error when the host has none or
 * several, so the operator names it with `--advertise-url` rather than the proxy guessing.
 */
export function advertisedUrl(advertiseUrl: string | undefined, addr: AddressInfo, options: { alone?: boolean } = {}): string {
  if (advertiseUrl !== undefined) return checkAdvertiseUrl(advertiseUrl);
  if (addr.address !== '0.0.0.0' && addr.address !== '::') return `http://${hostOf(addr.address, addr.family)}:${addr.port}`;
  if (options.alone) return `http://127.0.0.1:${addr.port}`;
  return externalBaseUrl(addr.port);
}

/** `http://<the host's one non-internal address>:<port>` (see {@link soleExternalAddress}). @throws Error */
export function externalBaseUrl(port: number): string {
  return `http://${hostOf(soleExternalAddress(), undefined)}:${port}`;
}

/** The host's one non-internal address (IPv4 first). @throws Error if there is none or more than one. */
export function soleExternalAddress(interfaces = networkInterfaces()): string {
  const all = Object.values(interfaces).flatMap((list) => list ?? []).filter((i) => !i.internal);
  const v4 = all.filter((i) => i.family === 'IPv4');
  const candidates = v4.length > 0 ? v4 : all.filter((i) => i.family === 'IPv6' && !i.address.startsWith('fe80:'));
  const unique = [...new Set(candidates.map((i) => i.address))];
  if (unique.length === 1) return unique[0]!;
  throw new Error(
    `owner routing: listening on all interfaces, and the address other replicas reach this one at is not clear (${unique.length === 0 ? 'no external address' : `addresses ${unique.join(', ')}`}); give --advertise-url http://HOST:PORT`,
  );
}

function hostOf(address: string, family: string | undefined): string {
  return family === 'IPv6' || address.includes(':') ? `[${address}]` : address;
}
