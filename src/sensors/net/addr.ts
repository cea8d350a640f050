// Address text for the network and DNS sensors: dotted IPv4, RFC 5952 IPv6,
// and IPv4-mapped IPv6 (dual-stack sockets talking IPv4) shown as IPv4.

export const AF_INET = 2;
export const AF_INET6 = 10;

export interface Address {
  family: 4 | 6;
  addr: string;
}

function v4(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

function isV4Mapped(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 10; i++) if (b[off + i] !== 0) return false;
  return b[off + 10] === 0xff && b[off + 11] === 0xff;
}

/** RFC 5952 text of 16 bytes: lower-case hex, the longest run (≥ 2) of zero groups as "::". */
export function formatIPv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + 2 * i] << 8) | b[off + 2 * i + 1]);
  let bestAt = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/**
 * Text of a kernel address: `family` is AF_INET/AF_INET6, `b[off..off+16)`
 * the address bytes (IPv4 in the first 4). Mapped IPv6 becomes IPv4.
 */
export function formatAddress(family: number, b: Uint8Array, off = 0): Address {
  if (family === AF_INET6) {
    if (isV4Mapped(b, off)) return { family: 4, addr: v4(b, off + 12) };
    return { family: 6, addr: formatIPv6(b, off) };
  }
  return { family: 4, addr: v4(b, off) };
}
