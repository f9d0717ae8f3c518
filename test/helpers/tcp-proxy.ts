// A TCP proxy between the app and PostgreSQL, so a test can take the database away under a running
// app: stop() resets every open connection and refuses new ones, as a crashed or stopped server
// does; blackhole() accepts connections and never answers, as an unreachable host does.
import net from 'node:net';

export interface TcpProxy {
  /** The database URL with host and port replaced by the proxy's. */
  readonly url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  blackhole(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(databaseUrl: string): Promise<TcpProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<net.Socket>();
  let mode: 'forward' | 'blackhole' = 'forward';
  let server: net.Server | undefined;
  let port = 0;

  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = net.createServer((client) => {
        track(client);
        if (mode === 'blackhole') return;
        const upstream = net.connect(Number(target.port), target.hostname);
        track(upstream);
        client.pipe(upstream).pipe(client);
        const closeBoth = () => {
          client.destroy();
          upstream.destroy();
        };
        client.on('close', closeBoth);
        upstream.on('close', closeBoth);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });

  const stop = async () => {
    const closing = server;
    server = undefined;
    for (const socket of sockets) socket.resetAndDestroy();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };

  await listen();
  const url = new URL(databaseUrl);
  url.host = `127.0.0.1:${port}`;
  return {
    url: url.toString(),
    start: async () => {
      mode = 'forward';
      if (!server) await listen();
    },
    stop,
    blackhole: async () => {
      await stop();
      mode = 'blackhole';
      await listen();
    },
    close: stop,
  };
}
