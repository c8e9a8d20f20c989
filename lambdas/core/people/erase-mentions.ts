/**
 * An address's mentions in stored values, found and replaced as whole addresses only: erasing
 * `ann@example.org` must not touch `joann@example.org`. A string that is the address becomes the
 * key; a longer text (a bounce's diagnostic, a template) has each mention replaced; a map keyed by
 * the address (a job's cc copies' message ids) is keyed by the key instead.
 */

/**
 * What an address is made of (the characters the API's address check lets into a local part or a
 * domain): a mention is not preceded by one of them, and not followed by one, nor by a dot that
 * goes on into more of it. So `hold#export#ann@x.org`, `<ann@x.org>:` and `ann@x.org.` are
 * mentions, and `jo.ann@x.org` or `ann@x.org.uk` are not.
 */
const BEFORE = "(?<![A-Za-z0-9_'+.-])";
const AFTER = "(?![A-Za-z0-9_'+-]|\\.[A-Za-z0-9])";

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function mentionPattern(email: string): RegExp {
  return new RegExp(`${BEFORE}${escapeRegExp(email)}${AFTER}`, 'gi');
}

/** The value with every mention of the address replaced by the key, keys of maps included. */
export function replaceMentions<T>(value: T, email: string, key: string): T {
  const pattern = mentionPattern(email);
  const replace = (found: unknown): unknown => {
    if (typeof found === 'string') return found.replace(pattern, key);
    if (Array.isArray(found)) return found.map(replace);
    if (found instanceof Set) return new Set([...found].map(replace));
    if (found !== null && typeof found === 'object' && !(found instanceof Uint8Array))
      return Object.fromEntries(
        Object.entries(found).map(([name, inner]) => [name.replace(pattern, key), replace(inner)]),
      );
    return found;
  };
  return replace(value) as T;
}

/** Whether the value mentions the address anywhere (a string, a map's key, deep inside). */
export function mentions(value: unknown, email: string): boolean {
  return mentionPattern(email).test(
    JSON.stringify(value, (_name, inner) => (inner instanceof Set ? [...inner] : inner)),
  );
}
