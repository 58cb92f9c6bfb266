// A TCP relay on 127.0.0.1 in front of a local server (the bench's kube-apiserver): it passes
// bytes through unchanged (TLS included) and notes when the server first answered anyone
// since the last reset(), so a start-up can be timed from the API server's first answer.
import net from 'node:net';

export interface Relay {
  url: string;
  /** performance.now() of the server's first byte to a client since reset(); undefined if none yet. */
  firstAnswerAt(): number | undefined;
  reset(): void;
  close(): Promise<void>;
}

export async function startRelay(targetPort: number): Promise<Relay> {
  let firstAnswer: number | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.once('data', () => (firstAnswer ??= performance.now()));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    firstAnswerAt: () => firstAnswer,
    reset: () => (firstAnswer = undefined),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
