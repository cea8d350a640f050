// GrpcStreamWriter against a bare grpc-js server and real grpc-js clients
// (unix socket): the direct path is taken with the installed grpc-js, rounds
// are coalesced into one HTTP/2 write, messages arrive intact and in order,
// the call ends with status OK, and the fallback is used when the internal
// shape is not there (forced, or server interceptors configured).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { frameAll, GrpcStreamWriter, grpcFrame, MessageTooLargeError, rawHttp2Stream } from './grpc-direct';

const DEF: grpc.ServiceDefinition = {
  S: {
    path: '/tetrahub.test.Direct/S',
    requestStream: false,
    responseStream: true,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

type Handler = (call: grpc.ServerWritableStream<Buffer, Buffer>) => void;

async function withServer(handler: Handler, fn: (client: grpc.Client) => Promise<void>, options: grpc.ServerOptions = {}): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grpc-direct-test-'));
  const server = new grpc.Server(options);
  server.addService(DEF, { S: handler });
  const address = `unix://${dir}/s.sock`;
  await new Promise<void>((resolve, reject) => server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  const Client = grpc.makeGenericClientConstructor(DEF, 'Direct');
  const client = new Client(address, grpc.credentials.createInsecure());
  try {
    await fn(client);
  } finally {
    client.close();
    server.forceShutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface Received {
  msgs: Buffer[];
  status?: grpc.StatusObject;
  error?: grpc.ServiceError;
}

function readAll(client: grpc.Client): Promise<Received> {
  return new Promise((resolve) => {
    const call = (client as unknown as { S(req: Buffer): grpc.ClientReadableStream<Buffer> }).S(Buffer.alloc(1));
    const r: Received = { msgs: [] };
    let ended = false;
    const done = () => r.status && (ended || r.error) && resolve(r);
    call.on('data', (b: Buffer) => r.msgs.push(b));
    call.on('status', (s: grpc.StatusObject) => {
      r.status = s;
      done();
    });
    call.on('error', (e: grpc.ServiceError) => {
      r.error = e;
      done();
    });
    call.on('end', () => {
      ended = true;
      done();
    });
  });
}

/** Message i: 4-byte index then i % 50 bytes of (i & 0xff); lengths 4..53, some tiny. */
function message(i: number): Buffer {
  const b = Buffer.alloc(4 + (i % 50), i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

function checkMessages(msgs: Buffer[], n: number): void {
  assert.equal(msgs.length, n);
  for (let i = 0; i < n; i++) assert.ok(msgs[i].equals(message(i)), `message ${i} intact and in order`);
}

/** Writes n messages in rounds of `round`, waiting for drain when blocked; resolves with the writer. */
function streamMessages(n: number, round: number, opts: { direct?: boolean; maxWriteBytes?: number } = {}): { handler: Handler; writer: Promise<GrpcStreamWriter> } {
  let resolveWriter!: (w: GrpcStreamWriter) => void;
  const writer = new Promise<GrpcStreamWriter>((r) => (resolveWriter = r));
  const handler: Handler = (call) => {
    call.sendMetadata(new grpc.Metadata());
    let wake: (() => void) | undefined;
    const w = new GrpcStreamWriter(call, { ...opts, onDrain: () => wake?.() });
    void (async () => {
      for (let i = 0; i < n; ) {
        for (let k = 0; k < round && i < n; k++) w.add(message(i++));
        assert.ok(w.flush());
        while (w.blocked) await new Promise<void>((r) => (wake = r));
      }
      w.end();
      resolveWriter(w);
    })();
  };
  return { handler, writer };
}

test('frames: 5-byte header (flag 0, uint32 BE length) + payload, back to back', () => {
  const a = Buffer.from('abc');
  const b = new Uint8Array(0);
  const c = Buffer.alloc(300, 9);
  assert.deepEqual([...grpcFrame(a)], [0, 0, 0, 0, 3, 97, 98, 99]);
  const all = frameAll([a, b, c], 5 + 3 + 5 + 0 + 5 + 300);
  assert.equal(all.length, 318);
  assert.deepEqual([...all.subarray(0, 13)], [0, 0, 0, 0, 3, 97, 98, 99, 0, 0, 0, 0, 0]);
  assert.deepEqual([...all.subarray(13, 18)], [0, 0, 0, 1, 44]);
  assert.ok(all.subarray(18).equals(c));
});

test('rawHttp2Stream: undefined for anything but a grpc-js call with headers sent', () => {
  assert.equal(rawHttp2Stream(undefined), undefined);
  assert.equal(rawHttp2Stream({}), undefined);
  assert.equal(rawHttp2Stream({ call: {} }), undefined);
  assert.equal(rawHttp2Stream({ call: { stream: { respond() {} } } }), undefined);
});

test('direct path: taken with the installed grpc-js, one write per round, 20,000 messages intact and in order, status OK', async () => {
  const N = 20_000;
  const { handler, writer } = streamMessages(N, 1000);
  await withServer(handler, async (client) => {
    const r = await readAll(client);
    assert.equal(r.error, undefined);
    assert.equal(r.status?.code, grpc.status.OK);
    checkMessages(r.msgs, N);
    const w = await writer;
    assert.equal(w.direct, true, 'the direct-write fast path is taken with the installed grpc-js');
    assert.equal(w.messages, N);
    assert.equal(w.writes, N / 1000, 'one HTTP/2 write per round');
  });
});

test('direct path with a small write budget and backpressure: still intact, in order', async () => {
  const N = 5000;
  const { handler, writer } = streamMessages(N, 5000, { maxWriteBytes: 2048 });
  await withServer(handler, async (client) => {
    const r = await readAll(client);
    assert.equal(r.status?.code, grpc.status.OK);
    checkMessages(r.msgs, N);
    assert.equal((await writer).direct, true);
  });
});

test('fallback: forced, or when server interceptors hide the HTTP/2 stream; same messages, status OK', async () => {
  const N = 3000;
  for (const [label, direct, options] of [
    ['forced', false, {}],
    ['interceptors', true, { interceptors: [(_def: grpc.ServerMethodDefinition<unknown, unknown>, call: grpc.ServerInterceptingCallInterface) => new grpc.ServerInterceptingCall(call)] }],
  ] as [string, boolean, grpc.ServerOptions][]) {
    const { handler, writer } = streamMessages(N, 500, { direct });
    await withServer(
      handler,
      async (client) => {
        const r = await readAll(client);
        assert.equal(r.status?.code, grpc.status.OK, label);
        checkMessages(r.msgs, N);
        const w = await writer;
        assert.equal(w.direct, false, label);
        assert.equal(w.writes, N, `${label}: one grpc-js write per message`);
      },
      options,
    );
  }
});

test('maxMessageBytes: add() throws MessageTooLargeError', async () => {
  let thrown: unknown;
  await withServer(
    (call) => {
      call.sendMetadata(new grpc.Metadata());
      const w = new GrpcStreamWriter(call, { maxMessageBytes: 10 });
      w.add(Buffer.alloc(10));
      try {
        w.add(Buffer.alloc(11));
      } catch (e) {
        thrown = e;
      }
      w.end();
    },
    async (client) => {
      const r = await readAll(client);
      assert.equal(r.status?.code, grpc.status.OK);
      assert.equal(r.msgs.length, 1);
    },
  );
  assert.ok(thrown instanceof MessageTooLargeError);
});

test('a cancelled call: the writer reports closed and flush() writes nothing', async () => {
  let w!: GrpcStreamWriter;
  let closed!: () => void;
  const closedP = new Promise<void>((r) => (closed = r));
  await withServer(
    (call) => {
      call.sendMetadata(new grpc.Metadata());
      w = new GrpcStreamWriter(call, { onClose: () => closed() });
      w.add(message(1));
      w.flush();
    },
    async (client) => {
      const call = (client as unknown as { S(req: Buffer): grpc.ClientReadableStream<Buffer> }).S(Buffer.alloc(1));
      call.on('error', () => undefined);
      await new Promise<void>((r) => call.once('data', () => r()));
      call.cancel();
      await closedP;
      assert.equal(w.closed, true);
      w.add(message(2));
      assert.equal(w.flush(), false);
      assert.equal(w.messages, 1);
    },
  );
});
