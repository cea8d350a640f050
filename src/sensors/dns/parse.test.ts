import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DNS_TYPE, dnsTypeName, messageOf, parseDnsMessage } from './parse';
import { QUERY, RESPONSE, encodeName, header, ipv4Bytes, ipv6Bytes, ptr, question, rr } from './wire';

const A = DNS_TYPE.A;
const AAAA = DNS_TYPE.AAAA;
const CNAME = DNS_TYPE.CNAME;

test('query: id, flags, one question', () => {
  const msg = Buffer.concat([header(0x1234, QUERY, 1, 0), question(encodeName('example.com'), A)]);
  const m = parseDnsMessage(msg);
  assert.equal(m.malformed, undefined);
  assert.equal(m.id, 0x1234);
  assert.equal(m.response, false);
  assert.equal(m.recursionDesired, true);
  assert.deepEqual(m.questions, [{ name: 'example.com', type: A, qclass: 1 }]);
  assert.deepEqual(m.answers, []);
});

test('A answers with compression pointers to the question name', () => {
  const msg = Buffer.concat([
    header(7, RESPONSE, 1, 2),
    question(encodeName('www.example.com'), A),
    rr(ptr(12), A, 300, ipv4Bytes('192.0.2.1')),
    rr(ptr(12), A, 60, ipv4Bytes('192.0.2.2')),
  ]);
  const m = parseDnsMessage(msg);
  assert.equal(m.malformed, undefined);
  assert.equal(m.response, true);
  assert.equal(m.rcode, 0);
  assert.deepEqual(m.answers, [
    { name: 'www.example.com', type: A, rclass: 1, ttl: 300, data: '192.0.2.1' },
    { name: 'www.example.com', type: A, rclass: 1, ttl: 60, data: '192.0.2.2' },
  ]);
});

test('AAAA answer, RFC 5952 text', () => {
  const msg = Buffer.concat([
    header(8, RESPONSE, 1, 2),
    question(encodeName('v6.example'), AAAA),
    rr(ptr(12), AAAA, 120, ipv6Bytes('2001:db8::1')),
    rr(ptr(12), AAAA, 120, ipv6Bytes('2001:db8:0:1:0:0:0:5')),
  ]);
  const m = parseDnsMessage(msg);
  assert.equal(m.malformed, undefined);
  assert.deepEqual(
    m.answers.map((a) => a.data),
    ['2001:db8::1', '2001:db8:0:1::5'],
  );
});

test('CNAME chain with a suffix pointer inside RDATA', () => {
  // 12: www.example.com (question)
  const q = question(encodeName('www.example.com'), A);
  const off1 = 12 + q.length; // first answer
  // answer 1: www.example.com CNAME cdn.<example.com at 16>
  const cname1 = Buffer.concat([Buffer.from([3]), Buffer.from('cdn'), ptr(16)]);
  const a1 = rr(ptr(12), CNAME, 100, cname1);
  const cdnAt = off1 + 2 + 10; // RDATA of answer 1 = "cdn.example.com"
  // answer 2: cdn.example.com CNAME edge.net
  const a2 = rr(ptr(cdnAt), CNAME, 50, encodeName('edge.net'));
  const edgeAt = off1 + a1.length + 2 + 10;
  // answer 3: edge.net A 198.51.100.7
  const a3 = rr(ptr(edgeAt), A, 20, ipv4Bytes('198.51.100.7'));
  const m = parseDnsMessage(Buffer.concat([header(9, RESPONSE, 1, 3), q, a1, a2, a3]));
  assert.equal(m.malformed, undefined);
  assert.deepEqual(
    m.answers.map((a) => [a.name, dnsTypeName(a.type), a.ttl, a.data]),
    [
      ['www.example.com', 'CNAME', 100, 'cdn.example.com'],
      ['cdn.example.com', 'CNAME', 50, 'edge.net'],
      ['edge.net', 'A', 20, '198.51.100.7'],
    ],
  );
});

test('NXDOMAIN: rcode 3, no answers', () => {
  const m = parseDnsMessage(Buffer.concat([header(10, RESPONSE | 3, 1, 0), question(encodeName('nope.invalid'), A)]));
  assert.equal(m.malformed, undefined);
  assert.equal(m.rcode, 3);
  assert.equal(m.answers.length, 0);
  assert.equal(m.questions[0].name, 'nope.invalid');
});

test('compression loops are caught, not followed', () => {
  // A pointer to itself.
  const selfAt = 12;
  let m = parseDnsMessage(Buffer.concat([header(1, QUERY, 1, 0), ptr(selfAt), Buffer.from([0, 1, 0, 1])]));
  assert.equal(m.malformed, 'compression loop');
  // Two names pointing at each other: "a" + ptr(second) and "b" + ptr(first).
  const first = 12;
  const second = first + 4;
  const body = Buffer.concat([Buffer.from([1, 0x61]), ptr(second), Buffer.from([1, 0x62]), ptr(first)]);
  m = parseDnsMessage(Buffer.concat([header(2, QUERY, 1, 0), body, Buffer.from([0, 1, 0, 1])]));
  assert.equal(m.malformed, 'compression loop');
  // A label followed by a pointer back to that label (a cycle through forward progress).
  m = parseDnsMessage(Buffer.concat([header(3, RESPONSE, 1, 1), question(encodeName('x.y'), A), Buffer.from([1, 0x7a]), ptr(12 + 9 + 4), Buffer.alloc(10)]));
  assert.equal(m.malformed, 'compression loop');
  assert.equal(m.questions.length, 1);
});

test('truncated packet: what parsed is kept, the rest flagged', () => {
  const full = Buffer.concat([
    header(11, RESPONSE, 1, 2),
    question(encodeName('t.example'), A),
    rr(ptr(12), A, 30, ipv4Bytes('203.0.113.1')),
    rr(ptr(12), A, 30, ipv4Bytes('203.0.113.2')),
  ]);
  const m = parseDnsMessage(full.subarray(0, full.length - 3));
  assert.equal(m.malformed, 'truncated record');
  assert.deepEqual(
    m.answers.map((a) => a.data),
    ['203.0.113.1'],
  );
  assert.equal(parseDnsMessage(full.subarray(0, 5)).malformed, 'truncated header');
  assert.equal(parseDnsMessage(full.subarray(0, 16)).malformed, 'truncated name');
  // Every prefix parses without throwing.
  for (let n = 0; n <= full.length; n++) parseDnsMessage(full.subarray(0, n));
});

test('label too long and name too long', () => {
  const bad = Buffer.concat([header(12, QUERY, 1, 0), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]);
  assert.equal(parseDnsMessage(bad).malformed, 'label length 64 > 63');
  const label = Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]);
  const long = Buffer.concat([header(13, QUERY, 1, 0), label, label, label, label, Buffer.from([0, 0, 1, 0, 1])]);
  assert.equal(parseDnsMessage(long).malformed, 'name too long');
  // 3 x 63 + a 61-octet label = 253 characters, 255 octets: the longest legal name.
  const max = Buffer.concat([header(14, QUERY, 1, 0), label, label, label, Buffer.from([61]), Buffer.alloc(61, 0x62), Buffer.from([0, 0, 1, 0, 1])]);
  const m = parseDnsMessage(max);
  assert.equal(m.malformed, undefined);
  assert.equal(m.questions[0].name.length, 253);
});

test('odd bytes in labels are escaped; root name; huge TTL reads as 0', () => {
  const name = Buffer.concat([Buffer.from([4, 0x61, 0x2e, 0x00, 0x5c]), Buffer.from([0])]);
  const msg = Buffer.concat([header(15, RESPONSE, 1, 1), question(name, A), rr(Buffer.from([0]), A, 0x80000000, ipv4Bytes('10.0.0.1'))]);
  const m = parseDnsMessage(msg);
  assert.equal(m.malformed, undefined);
  assert.equal(m.questions[0].name, 'a\\.\\000\\\\');
  assert.equal(m.answers[0].name, '.');
  assert.equal(m.answers[0].ttl, 0);
});

test('a bad A length and a name running past its record are flagged', () => {
  const msg = Buffer.concat([header(16, RESPONSE, 1, 1), question(encodeName('b.example'), A), rr(ptr(12), A, 5, Buffer.from([1, 2, 3]))]);
  assert.equal(parseDnsMessage(msg).malformed, 'bad A record length');
  // RDATA holds only the first 4 bytes of "long.target"; the rest follows the record.
  const target = encodeName('long.target');
  const cn = Buffer.concat([header(17, RESPONSE, 1, 1), question(encodeName('c.example'), CNAME), rr(ptr(12), CNAME, 5, target.subarray(0, 4)), target.subarray(4)]);
  assert.equal(parseDnsMessage(cn).malformed, 'name past its record');
});

test('record counts are bounded', () => {
  const one = rr(ptr(12), A, 1, ipv4Bytes('10.1.1.1'));
  const many = Buffer.concat([header(18, RESPONSE, 1, 65535), question(encodeName('m.example'), A), ...Array<Buffer>(300).fill(one)]);
  const m = parseDnsMessage(many);
  assert.equal(m.malformed, 'too many records');
  assert.equal(m.answers.length, 255);
});

test('TCP messages carry a length prefix', () => {
  const msg = Buffer.concat([header(19, QUERY, 1, 0), question(encodeName('tcp.example'), A)]);
  const seg = Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg]);
  const inner = messageOf(seg, 'tcp');
  assert.ok(inner);
  assert.equal(parseDnsMessage(inner).questions[0].name, 'tcp.example');
  assert.equal(messageOf(Buffer.from([0]), 'tcp'), null);
  assert.equal(messageOf(Buffer.from([0, 3, 1, 2, 3]), 'tcp'), null);
  assert.equal(messageOf(msg, 'udp'), msg);
});

test('random garbage never throws and finishes fast', () => {
  let seed = 42;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const t0 = Date.now();
  for (let i = 0; i < 20000; i++) {
    const b = Buffer.alloc(rnd() % 300);
    for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
    if (b.length > 12) {
      b[4] = 0;
      b[5] = rnd() % 4; // a few questions
      b[6] = 0;
      b[7] = rnd() % 8;
    }
    parseDnsMessage(b);
  }
  assert.ok(Date.now() - t0 < 5000);
});
