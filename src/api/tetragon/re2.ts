// Filter regexes arrive in RE2 syntax (Go's regexp). We run them as JS
// RegExps, so translate the RE2 spellings JS lacks and refuse what RE2 itself
// refuses (lookarounds, backreferences) — a pattern that Tetragon would reject
// must not quietly work here, and one it accepts must mean the same thing.
//
// Translated: leading (?flags) with i/m/s, (?P<name>…), \A, \z, \Q…\E, POSIX
// classes inside brackets ([[:alpha:]]). Refused: lookahead/lookbehind,
// \1…\9 and \k<…> backreferences, possessive/atomic groups, (?U), inline flags
// that are not at the start, unknown letter escapes.

export class Re2Error extends Error {
  override name = 'Re2Error';
}

const POSIX: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7f',
  blank: '\\t ',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

// Escapes RE2 and JS agree on (letters only; punctuation escapes are literal in both).
const SHARED_ESCAPES = new Set(['d', 'D', 's', 'S', 'w', 'W', 'b', 'B', 'f', 'n', 'r', 't', 'v', 'x', 'p', 'P']);
// \a is BEL in RE2 but an error/identity in JS.
const SPECIAL_ESCAPES: Record<string, string> = { a: '\\x07', A: '^', z: '$' };

function escapeLiteral(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/** Compiles an RE2 pattern to an equivalent JS RegExp, or throws Re2Error. */
export function compileRe2(pattern: string): RegExp {
  let src = pattern;
  let flags = '';
  // Leading inline flags: (?i), (?s), (?m), (?is) …
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(src);
  if (lead) {
    for (const f of lead[1]) {
      if (f === 'i' || f === 'm' || f === 's') {
        if (!flags.includes(f)) flags += f;
      } else throw new Re2Error(`unsupported flag (?${f})`);
    }
    src = src.slice(lead[0].length);
  }
  let out = '';
  let inClass = false;
  let unicode = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) throw new Re2Error('trailing backslash');
      if (n === 'Q') {
        const end = src.indexOf('\\E', i + 2);
        const lit = end < 0 ? src.slice(i + 2) : src.slice(i + 2, end);
        out += escapeLiteral(lit);
        i = end < 0 ? src.length : end + 1;
        continue;
      }
      if (n >= '1' && n <= '9') throw new Re2Error(`backreference \\${n} not supported`);
      if (n === 'k') throw new Re2Error('backreference \\k not supported');
      if (n === 'p' || n === 'P') unicode = true;
      if (/[A-Za-z]/.test(n)) {
        const special = SPECIAL_ESCAPES[n];
        if (special !== undefined && !(inClass && (n === 'A' || n === 'z'))) {
          out += special;
        } else if (SHARED_ESCAPES.has(n)) {
          out += '\\' + n;
        } else {
          throw new Re2Error(`invalid escape \\${n}`);
        }
      } else if (n === '0') {
        out += '\\x00';
      } else {
        out += '\\' + n;
      }
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[' && src[i + 1] === ':') {
        const end = src.indexOf(':]', i + 2);
        if (end > 0) {
          let name = src.slice(i + 2, end);
          const neg = name.startsWith('^');
          if (neg) name = name.slice(1);
          const body = POSIX[name];
          if (!body) throw new Re2Error(`invalid character class [:${name}:]`);
          if (neg) throw new Re2Error(`negated POSIX class [:^${name}:] not supported`);
          out += body;
          i = end + 1;
          continue;
        }
      }
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      // A leading ']' (or '^]') is a literal in RE2.
      if (src[i + 1] === '^') {
        out += '^';
        i++;
      }
      if (src[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const rest = src.slice(i + 2);
      if (rest.startsWith('P<')) {
        out += '(?<';
        i += 3;
        continue;
      }
      if (rest.startsWith(':')) {
        out += '(?:';
        i += 2;
        continue;
      }
      if (rest.startsWith('<')) {
        if (rest.startsWith('<=') || rest.startsWith('<!')) throw new Re2Error('lookbehind not supported');
        out += '(?<';
        i += 2;
        continue;
      }
      if (rest.startsWith('=') || rest.startsWith('!')) throw new Re2Error('lookahead not supported');
      if (rest.startsWith('>')) throw new Re2Error('atomic groups not supported');
      throw new Re2Error('inline flags are only supported at the start of the pattern');
    }
    if ((c === '+' || c === '*' || c === '?' || c === '}') && src[i + 1] === '+') {
      throw new Re2Error('possessive quantifiers not supported');
    }
    out += c;
  }
  if (unicode) flags += 'u';
  try {
    return new RegExp(out, flags);
  } catch (e) {
    throw new Re2Error(e instanceof Error ? e.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '') : String(e));
  }
}
