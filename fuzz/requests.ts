import fc from 'fast-check';
import type { Route } from '../local/api-model';

/** One request the fuzzer sends: everything a client controls. */
export interface FuzzRequest {
  route: string;
  method: string;
  /** Path below the stage, parameters filled in and percent-encoded. */
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** Values the fuzzer knows to be valid, so near-valid requests reach past the first check. */
export interface Fixtures {
  email: string;
  jobId: string;
}

/**
 * Percent-encodes every byte of the UTF-8 form. Unlike `encodeURIComponent` it never throws: a
 * lone surrogate becomes U+FFFD's bytes, as a client's encoder would send it.
 */
const percentEncode = (value: string) =>
  [...Buffer.from(value, 'utf8')]
    .map((byte) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(byte))
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

/** Text that breaks naive code: NUL and control characters, lone surrogates, RTL marks, combining marks, emoji. */
const nastyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '\u0000',
    'a\r\nBcc: x@evil.example',
    '\u202eevil',
    'e\u0301\u0301\u0301',
    '👩‍👩‍👧‍👦',
    '\ud800',
    '\udfff',
    ' ',
    '',
    '{name.__class__}',
    '{{}}',
    '%00',
    '../..',
    '<script>',
    '<a href="jav&#x61;script:alert(1)">x</a>',
    '<img src=x onerror=alert(1)>',
    '<a href="{address}">x</a>',
  ),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

/** Past every field's limit; now and then past API Gateway's URL limit too. */
const hugeText = fc
  .oneof(
    { weight: 5, arbitrary: fc.integer({ min: 255, max: 3_000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 3_001, max: 12_000 }) },
  )
  .map((length) => 'x'.repeat(length));

/** Addresses valid, near-valid and not: mixed case, IDN, over-long, two @, quoted. */
const addresses = (fixtures: Fixtures) =>
  fc.oneof(
    fc.constant(fixtures.email),
    fc.constant(fixtures.email.toUpperCase()),
    fc.emailAddress(),
    fc.constantFrom(
      'a@b',
      '@example.org',
      'a@@example.org',
      '"a b"@example.org',
      'a@bücher.example',
      'a@xn--bcher-kva.example',
    ),
    hugeText.map((text) => `${text}@example.org`),
    nastyText,
  );

/** Numbers at the edges, and things that only look like numbers. */
const edgyNumber = fc.oneof(
  fc.constantFrom(0, -1, 1, 100, 101, 2 ** 31, Number.MAX_SAFE_INTEGER, 1e308, -0, 0.5),
  fc.double(),
  fc.integer(),
);

const anyJson = fc.jsonValue({ maxDepth: 4 });
const deeplyNested = fc
  .integer({ min: 50, max: 3_000 })
  .map((depth) => '['.repeat(depth) + ']'.repeat(depth));

/**
 * Times for `send_at`: without a zone, not a date, past, too soon, too far, and one the API takes
 * (two hours from when the fuzzer starts: a run is over long before its jobs would start).
 */
const sendAtValues = fc.oneof(
  fc.constantFrom(
    '2031-01-01T09:00:00',
    '2031-02-30T09:00:00Z',
    'tomorrow',
    '2020-01-01T00:00:00Z',
    new Date(Date.now() + 30_000).toISOString(),
    new Date(Date.now() + 31 * 24 * 3600_000).toISOString(),
    new Date(Date.now() + 2 * 3600_000).toISOString().replace('Z', '+00:00'),
  ),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
);

/** The API's field names with values of every kind: wrong types, missing and extra fields. */
const nearValidBody = (fixtures: Fixtures) =>
  fc.record(
    {
      email: fc.oneof(addresses(fixtures), anyJson),
      name: fc.oneof(nastyText, hugeText, anyJson, fc.constant('Example Aid')),
      address: fc.oneof(nastyText, hugeText, anyJson, fc.constant('1 Main St')),
      emails: fc.oneof(
        fc.array(addresses(fixtures), { maxLength: 5 }),
        anyJson,
        fc.constant([fixtures.email]),
      ),
      template: fc.oneof(nastyText, hugeText, anyJson, fc.constant('Dear {name}')),
      subject: fc.oneof(nastyText, anyJson, fc.constant('Hi {name}')),
      html: fc.oneof(nastyText, hugeText, anyJson, fc.constant('<p>Dear {name}</p>')),
      cc: fc.oneof(fc.array(addresses(fixtures), { maxLength: 60 }), anyJson),
      send_at: fc.oneof(sendAtValues, nastyText, anyJson),
      extra: anyJson,
    },
    { requiredKeys: [] },
  );

/** Plain addresses every validator takes (fast-check's own are valid by RFC 5322, not by the API's stricter rule). */
const plainAddress = fc.stringMatching(/^[a-z0-9]{1,12}$/).map((local) => `${local}@fuzz.example.org`);

/** A job request the API accepts (sent, or previewed). */
const jobBody = (fixtures: Fixtures) =>
  fc.record({
    emails: fc.constant([fixtures.email]),
    template: fc.constantFrom('Dear {name}', 'Hi {email} at {address}', '{{literal}}'),
    subject: fc.constantFrom('News for {name}', 'Hello'),
    cc: fc.array(plainAddress, { maxLength: 3 }),
    // Text only, or multipart with an HTML part (every value escaped in it).
    html: fc.option(
      fc.constantFrom(
        '<p>Dear {name}</p>',
        '<html><head><style>p {{ color: #333 }}</style></head><body><p>Hi {name} at {address}</p><a href="mailto:{email}">write</a></body></html>',
      ),
      { nil: undefined },
    ),
    // Sent now, or scheduled two hours ahead.
    send_at: fc.option(fc.constant(new Date(Date.now() + 2 * 3600_000).toISOString()), { nil: undefined }),
  });

/**
 * Bodies the API accepts, by route, so the fuzzer also walks the paths past validation (and stores
 * things). A route not named here gets any of them: it is still fuzzed, only less deeply.
 */
const VALID_BODIES: Record<
  string,
  (fixtures: Fixtures) => fc.Arbitrary<Record<string, unknown> | Record<string, unknown>[]>
> = {
  'POST /nonprofits': () =>
    fc.record({ email: plainAddress, name: fc.constant('Fuzz Aid'), address: fc.constant('2 Fuzz St') }),
  'PUT /nonprofits/{email}': () =>
    fc.record({
      name: fc
        .string({ minLength: 1, maxLength: 50 })
        .filter((name) => /^[^\p{Cc}\u2028\u2029]*\S[^\p{Cc}\u2028\u2029]*$/u.test(name)),
      address: fc.constant('3 Fuzz St'),
    }),
  'PUT /suppressions/{email}': () =>
    fc.record({ note: fc.constantFrom('asked by phone', 'returned mail', '') }, { requiredKeys: [] }),
  'POST /send-email': (fixtures) => jobBody(fixtures),
  'POST /send-email/preview': (fixtures) => jobBody(fixtures),
  // Sending is on in the fuzzed runtime: a resume is refused (409), changing nothing.
  'POST /sending/resume': () =>
    fc.record(
      { reason: fc.constantFrom('the list was cleaned', 'checked with the ISP'), force: fc.boolean() },
      { requiredKeys: ['reason'] },
    ),
  'POST /nonprofits/import': () =>
    fc.array(
      fc.record({
        email: plainAddress,
        name: fc.constant('Imported Aid'),
        address: fc.constant('4 Fuzz St'),
      }),
      { minLength: 1, maxLength: 3 },
    ),
};

const validBody = (route: string, fixtures: Fixtures) =>
  VALID_BODIES[route]?.(fixtures) ?? fc.oneof(...Object.values(VALID_BODIES).map((body) => body(fixtures)));

/** A valid body with one field replaced by something that is not. */
const oneFieldOff = (route: string, fixtures: Fixtures) =>
  fc
    .tuple(
      validBody(route, fixtures),
      fc.constantFrom(
        'email',
        'name',
        'address',
        'emails',
        'template',
        'subject',
        'html',
        'cc',
        'send_at',
        'extra',
      ),
      fc.oneof(nastyText, hugeText, anyJson),
    )
    // An import's body is an array of rows: the first row gets the bad field.
    .map(([body, field, value]) =>
      Array.isArray(body) ? [{ ...body[0], [field]: value }, ...body.slice(1)] : { ...body, [field]: value },
    );

const bodies = (route: string, fixtures: Fixtures) =>
  fc.oneof(
    { weight: 3, arbitrary: validBody(route, fixtures).map((body) => JSON.stringify(body)) },
    { weight: 3, arbitrary: oneFieldOff(route, fixtures).map((body) => JSON.stringify(body)) },
    { weight: 3, arbitrary: nearValidBody(fixtures).map((body) => JSON.stringify(body)) },
    { weight: 2, arbitrary: anyJson.map((value) => JSON.stringify(value)) },
    { weight: 1, arbitrary: deeplyNested },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '{"email":', '\u0000', '[]', '""') },
  );

/** A path parameter: the fixture it names, or something forged. */
const parameter = (name: string, fixtures: Fixtures) =>
  fc.oneof(
    fc.constant(name === 'job_id' ? fixtures.jobId : fixtures.email),
    fc.uuid(),
    addresses(fixtures),
    nastyText,
    hugeText,
  );

const queryPairs = fc.array(
  fc.tuple(
    fc.oneof(fc.constantFrom('limit', 'cursor', 'status', 'domain', 'on_conflict'), nastyText),
    fc.oneof(
      edgyNumber.map(String),
      nastyText,
      hugeText,
      fc.constantFrom('sent', 'failed', 'pending', 'queued', 'completed', 'example.org', 'eyJ2IjoxfQ'),
      fc.base64String({ maxLength: 200 }),
    ),
  ),
  { maxLength: 4 },
);

/** Header values a client can send (HTTP carries bytes, so no character above U+00FF). */
const headerValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', ' ', 'x'.repeat(300), 'key\tvalue', 'ÿ'),
);

const headers = fc.record(
  {
    'content-type': fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'text/csv',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ),
    'content-encoding': fc.constantFrom('gzip', 'identity', 'br'),
    'idempotency-key': headerValue,
  },
  { requiredKeys: [] },
);

/** Requests for one route of the template: its method, its path with forged parameters, and everything else arbitrary. */
export function requestsFor(route: Route, fixtures: Fixtures): fc.Arbitrary<FuzzRequest> {
  const names = [...route.resourcePath.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] as string);
  const hasBody = route.method !== 'GET' && route.method !== 'DELETE';
  const routeName = `${route.method} ${route.resourcePath}`;
  return fc
    .record({
      values: fc.tuple(...names.map((name) => parameter(name, fixtures))),
      // Half the requests are clean but for one part, so some get past validation and store things.
      query: fc.oneof(fc.constant([] as [string, string][]), queryPairs),
      headers: fc.oneof(fc.constant({ 'content-type': 'application/json' }), headers),
      body: hasBody
        ? fc.option(bodies(routeName, fixtures), { nil: undefined, freq: 8 })
        : fc.constant(undefined),
      // Mostly with the key, sometimes without: the gateway's own 403 is JSON too.
      withKey: fc.oneof(
        { weight: 9, arbitrary: fc.constant(true) },
        { weight: 1, arbitrary: fc.constant(false) },
      ),
    })
    .map(({ values, query, headers: extra, body, withKey }) => {
      let path = route.resourcePath;
      names.forEach((name, index) => {
        path = path.replace(`{${name}}`, percentEncode(String(values[index])));
      });
      const search = query.map(([key, value]) => `${percentEncode(key)}=${percentEncode(value)}`).join('&');
      return {
        route: routeName,
        method: route.method,
        path: search ? `${path}?${search}` : path,
        headers: { ...extra, ...(withKey ? {} : { 'x-api-key': '' }) },
        ...(body === undefined ? {} : { body }),
      };
    });
}
