/**
 * Preloaded (`node --import`) into test servers whose code listens on a fixed port (the MCP SDK
 * examples listen on 3000 or 3001 whatever the environment says): `TEST_LISTEN_PORTS=3000=41234,…`
 * makes a `listen` on a listed port use the given one instead, so several replicas (and other tests on
 * this machine) never compete for the same port. Listens on other ports (0, the runtime's loopback
 * server) are untouched. The server's own code is not modified.
 */
import net from 'node:net';

const map = new Map(
  (process.env.TEST_LISTEN_PORTS ?? '')
    .split(',')
    .filter(Boolean)
    .map((pair) => pair.split('=').map(Number)),
);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === 'number' && map.has(first)) args[0] = map.get(first);
  else if (typeof first === 'string' && /^\d+$/.test(first) && map.has(Number(first))) args[0] = map.get(Number(first));
  else if (first && typeof first === 'object' && map.has(Number(first.port))) args[0] = { ...first, port: map.get(Number(first.port)) };
  return listen.apply(this, args);
};
