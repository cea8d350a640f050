// Builds DNS wire messages by hand, for tests and the test DNS server
// (integration/dns.test.ts). Not used by the agent.

export function encodeName(name: string): Buffer {
  if (name === '' || name === '.') return Buffer.from([0]);
  const parts = name.split('.').map((l) => Buffer.from(l, 'latin1'));
  return Buffer.concat([...parts.flatMap((p) => [Buffer.from([p.length]), p]), Buffer.from([0])]);
}

export function header(id: number, flags: number, qd: number, an: number, ns = 0, ar = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(flags, 2);
  b.writeUInt16BE(qd, 4);
  b.writeUInt16BE(an, 6);
  b.writeUInt16BE(ns, 8);
  b.writeUInt16BE(ar, 10);
  return b;
}

export function question(name: Buffer, type: number, qclass = 1): Buffer {
  const t = Buffer.alloc(4);
  t.writeUInt16BE(type, 0);
  t.writeUInt16BE(qclass, 2);
  return Buffer.concat([name, t]);
}

export function rr(name: Buffer, type: number, ttl: number, rdata: Buffer, rclass = 1): Buffer {
  const f = Buffer.alloc(10);
  f.writeUInt16BE(type, 0);
  f.writeUInt16BE(rclass, 2);
  f.writeUInt32BE(ttl >>> 0, 4);
  f.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([name, f, rdata]);
}

/** A compression pointer to `offset`. */
export function ptr(offset: number): Buffer {
  return Buffer.from([0xc0 | (offset >> 8), offset & 0xff]);
}

export function ipv4Bytes(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

export function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  return b;
}

/** Response flags: QR, RD, RA and the rcode. */
export const RESPONSE = 0x8180;
export const QUERY = 0x0100;
