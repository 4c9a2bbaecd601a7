import { createServer, type Server, Socket } from "node:net";

/**
 * A TCP proxy of our own between the app and a shared server (PostgreSQL,
 * Redis), so a test can simulate an outage without stopping the server other
 * people use. `cut()` resets every open connection and every new one (what a
 * client sees when the server stops or its connections are killed);
 * `stall()` silently stops every byte (a partition); `restore()` forwards
 * again on the same port.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private down = false;
  private stalled = false;
  connections = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => {
      if (!proxy || proxy.down) {
        client.resetAndDestroy();
        return;
      }
      proxy.connections += 1;
      const upstream = new Socket();
      proxy.track(client);
      proxy.track(upstream);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      const pair = { client, upstream };
      upstream.connect(targetPort, targetHost, () => {
        proxy!.pairs.add(pair);
        if (!proxy!.stalled) TcpProxy.forward(pair);
      });
      client.on("close", () => proxy?.pairs.delete(pair));
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (typeof address !== "object" || address === null) throw new Error("proxy did not bind");
    proxy = new TcpProxy(server, address.port);
    return proxy;
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
  }

  private static forward({ client, upstream }: { client: Socket; upstream: Socket }): void {
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
    upstream.resume();
  }

  /**
   * A network partition: connections stay open but no byte passes either way
   * (nothing is reset, so neither side learns of it) until `restore()`.
   */
  stall(): void {
    this.stalled = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Resets every proxied connection and refuses new ones until `restore()`. */
  cut(): void {
    this.down = true;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  restore(): void {
    this.down = false;
    if (this.stalled) {
      this.stalled = false;
      for (const pair of this.pairs) TcpProxy.forward(pair);
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
