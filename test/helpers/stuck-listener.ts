/**
 * A replica that is alive but does not take connections (a frozen process, a full accept queue): a
 * child process listening on loopback with a backlog of 1, stopped with SIGSTOP, its accept queue filled.
 * New TCP connections to it then never complete (the kernel drops their SYNs), which is what a
 * connect timeout means. `stop()` kills it.
 */
import net from 'node:net';
import { spawnManaged } from './processes.js';

export interface StuckListener {
  /** `http://127.0.0.1:PORT`, where no connection completes. */
  url: string;
  stop(): Promise<void>;
}

const LISTEN = "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log('port '+s.address().port))";

export async function startStuckListener(name = 'stuck-listener'): Promise<StuckListener> {
  const child = spawnManaged(process.execPath, ['-e', LISTEN], { name });
  const port = Number((await child.waitForOutput(/port (\d+)/, 10_000))[1]);
  process.kill(child.pid, 'SIGSTOP');
  // The stopped process accepts nothing: these connections fill its accept queue (backlog + 1).
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
  }
  await new Promise((r) => setTimeout(r, 200));
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      for (const s of fillers) s.destroy();
      await child.stop({ signal: 'SIGKILL' });
    },
  };
}
