// DNS message parser (RFC 1035 wire format) for captured packets.
//
// The input is untrusted and often cut short (the kernel copies a bounded
// prefix), so the parser never throws and never loops: every read is bounds
// checked, compression pointers must point strictly backwards and below every
// earlier jump target (so they cannot cycle) with a hard cap on jumps, names
// are capped at 255 octets, and the number of records read is capped. When it
// has to stop it returns what it has, with `malformed` saying why.
//
// Names are returned without the trailing dot ("example.com"; the root is "."),
// with bytes outside printable ASCII, '.' and '\' escaped as in zone files.

export interface DnsQuestion {
  name: string;
  type: number;
  qclass: number;
}

export interface DnsResourceRecord {
  name: string;
  type: number;
  rclass: number;
  /** Seconds; values with the top bit set read as 0 (RFC 2181 §8). */
  ttl: number;
  /** A/AAAA: address; CNAME/NS/PTR/DNAME: target; MX, SRV, TXT: presentation text; else "". */
  data: string;
}

export interface DnsMessage {
  id: number;
  response: boolean;
  opcode: number;
  rcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  recursionAvailable: boolean;
  /** Section counts as the header claims them. */
  counts: { qd: number; an: number; ns: number; ar: number };
  questions: DnsQuestion[];
  answers: DnsResourceRecord[];
  /** Why parsing stopped early; absent when the message parsed completely. */
  malformed?: string;
}

export const DNS_LIMITS = {
  /** Compression pointers followed while reading one name. */
  maxJumps: 32,
  /** Wire octets of a name, root label included (RFC 1035 §2.3.4). */
  maxNameOctets: 255,
  /** Questions + answers read from one message. */
  maxRecords: 256,
} as const;

const TYPE_NAMES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  13: 'HINFO',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  39: 'DNAME',
  41: 'OPT',
  43: 'DS',
  46: 'RRSIG',
  47: 'NSEC',
  48: 'DNSKEY',
  50: 'NSEC3',
  52: 'TLSA',
  64: 'SVCB',
  65: 'HTTPS',
  99: 'SPF',
  252: 'AXFR',
  255: 'ANY',
  257: 'CAA',
};

/** Mnemonic of an RR type, "TYPE<n>" (RFC 3597) when unknown. */
export function dnsTypeName(type: number): string {
  return TYPE_NAMES[type] ?? `TYPE${type}`;
}

export const DNS_TYPE = { A: 1, NS: 2, CNAME: 5, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, DNAME: 39 } as const;

class Malformed extends Error {}

function labelText(b: Uint8Array, from: number, len: number): string {
  let s = '';
  for (let i = from; i < from + len; i++) {
    const c = b[i];
    if (c === 0x2e || c === 0x5c) s += '\\' + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += '\\' + String(c).padStart(3, '0');
  }
  return s;
}

/** Reads a possibly compressed name at `off`; returns it and the offset after it (in place, not after a jump). */
export function readName(b: Uint8Array, off: number): [string, number] {
  const labels: string[] = [];
  let pos = off;
  let next = -1;
  let jumps = 0;
  let lowest = off;
  let octets = 1; // the root label
  for (;;) {
    if (pos >= b.length) throw new Malformed('truncated name');
    const len = b[pos];
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= b.length) throw new Malformed('truncated name');
      const target = ((len & 0x3f) << 8) | b[pos + 1];
      if (next < 0) next = pos + 2;
      if (++jumps > DNS_LIMITS.maxJumps) throw new Malformed('compression loop');
      // Backwards and below every place already visited: a cycle is impossible.
      if (target >= lowest) throw new Malformed('compression loop');
      lowest = target;
      pos = target;
      continue;
    }
    if (len & 0xc0) throw new Malformed(`label length ${len} > 63`);
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    if (pos + 1 + len > b.length) throw new Malformed('truncated name');
    octets += len + 1;
    if (octets > DNS_LIMITS.maxNameOctets) throw new Malformed('name too long');
    labels.push(labelText(b, pos + 1, len));
    pos += 1 + len;
    if (pos < lowest) lowest = pos;
  }
  return [labels.length ? labels.join('.') : '.', next];
}

function u16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) >>> 0) + ((b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]);
}

function ipv4(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

function ipv6(b: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(u16(b, off + 2 * i));
  let at = -1;
  let best = 0;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i >= 2 && j - i > best) {
      at = i;
      best = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (a: number, z: number): string => g.slice(a, z).map((x) => x.toString(16)).join(':');
  return at < 0 ? hex(0, 8) : `${hex(0, at)}::${hex(at + best, 8)}`;
}

/** Presentation text of the RDATA at [pos, end). */
function rdataText(b: Uint8Array, type: number, pos: number, end: number): string {
  const nameIn = (at: number): string => {
    const [n, after] = readName(b, at);
    if (after > end) throw new Malformed('name past its record');
    return n;
  };
  switch (type) {
    case DNS_TYPE.A:
      if (end - pos !== 4) throw new Malformed('bad A record length');
      return ipv4(b, pos);
    case DNS_TYPE.AAAA:
      if (end - pos !== 16) throw new Malformed('bad AAAA record length');
      return ipv6(b, pos);
    case DNS_TYPE.CNAME:
    case DNS_TYPE.NS:
    case DNS_TYPE.PTR:
    case DNS_TYPE.DNAME:
      return nameIn(pos);
    case DNS_TYPE.MX:
      if (end - pos < 3) throw new Malformed('bad MX record length');
      return `${u16(b, pos)} ${nameIn(pos + 2)}`;
    case DNS_TYPE.SRV:
      if (end - pos < 7) throw new Malformed('bad SRV record length');
      return `${u16(b, pos)} ${u16(b, pos + 2)} ${u16(b, pos + 4)} ${nameIn(pos + 6)}`;
    case DNS_TYPE.TXT: {
      const parts: string[] = [];
      let p = pos;
      while (p < end) {
        const n = b[p];
        if (p + 1 + n > end) throw new Malformed('bad TXT record');
        parts.push(`"${labelText(b, p + 1, n)}"`);
        p += 1 + n;
      }
      return parts.join(' ');
    }
    default:
      return '';
  }
}

/** Parses one DNS message (no TCP length prefix). Never throws. */
export function parseDnsMessage(b: Uint8Array): DnsMessage {
  const m: DnsMessage = {
    id: b.length >= 2 ? u16(b, 0) : 0,
    response: false,
    opcode: 0,
    rcode: 0,
    authoritative: false,
    truncated: false,
    recursionDesired: false,
    recursionAvailable: false,
    counts: { qd: 0, an: 0, ns: 0, ar: 0 },
    questions: [],
    answers: [],
  };
  if (b.length < 12) {
    m.malformed = 'truncated header';
    return m;
  }
  const f1 = b[2];
  const f2 = b[3];
  m.response = (f1 & 0x80) !== 0;
  m.opcode = (f1 >> 3) & 0xf;
  m.authoritative = (f1 & 0x04) !== 0;
  m.truncated = (f1 & 0x02) !== 0;
  m.recursionDesired = (f1 & 0x01) !== 0;
  m.recursionAvailable = (f2 & 0x80) !== 0;
  m.rcode = f2 & 0xf;
  m.counts = { qd: u16(b, 4), an: u16(b, 6), ns: u16(b, 8), ar: u16(b, 10) };
  let pos = 12;
  let budget: number = DNS_LIMITS.maxRecords;
  try {
    for (let i = 0; i < m.counts.qd; i++) {
      if (budget-- <= 0) throw new Malformed('too many records');
      const [name, next] = readName(b, pos);
      if (next + 4 > b.length) throw new Malformed('truncated question');
      m.questions.push({ name, type: u16(b, next), qclass: u16(b, next + 2) });
      pos = next + 4;
    }
    for (let i = 0; i < m.counts.an; i++) {
      if (budget-- <= 0) throw new Malformed('too many records');
      const [name, next] = readName(b, pos);
      if (next + 10 > b.length) throw new Malformed('truncated record');
      const type = u16(b, next);
      const rclass = u16(b, next + 2);
      const rawTtl = u32(b, next + 4);
      const rdlen = u16(b, next + 8);
      const rd = next + 10;
      if (rd + rdlen > b.length) throw new Malformed('truncated record');
      m.answers.push({ name, type, rclass, ttl: rawTtl > 0x7fffffff ? 0 : rawTtl, data: rdataText(b, type, rd, rd + rdlen) });
      pos = rd + rdlen;
    }
  } catch (e) {
    m.malformed = e instanceof Malformed ? e.message : `parser error: ${(e as Error).message}`;
  }
  return m;
}

/**
 * The DNS message inside a captured L4 payload: UDP carries it as is, TCP
 * prefixes it with a 16-bit length (only a segment that starts a message
 * can be decoded). Returns null when there is no message to look at.
 */
export function messageOf(payload: Uint8Array, protocol: 'udp' | 'tcp'): Uint8Array | null {
  if (protocol === 'udp') return payload;
  if (payload.length < 2) return null;
  const len = u16(payload, 0);
  if (len < 12) return null;
  return payload.subarray(2, Math.min(payload.length, 2 + len));
}
