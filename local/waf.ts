import { type CfnTemplate, resourcesOfType } from './template';

/**
 * A WAF rate-based rule as the local gateway applies it: requests counted per client address over a
 * sliding window, optionally only those whose path matches, and the answer once a client is over.
 * The template's managed rule groups (AWS's lists and signatures) have no local stand-in.
 */
export interface RateRuleModel {
  name: string;
  priority: number;
  limit: number;
  windowSeconds: number;
  /** Only requests whose path (URL-decoded, lower-cased) matches are counted; none: every request. */
  pathPattern?: RegExp;
  answer: { statusCode: number; headers: Record<string, string>; body: string };
}

type Props = Record<string, unknown>;

/**
 * The rate-based rules of every web ACL associated with the stage. Only what WAF's rate-based
 * statement says that this reader knows is taken (per-IP aggregation, a path scope-down); a rule
 * it cannot read fails loudly rather than being skipped, so the local gateway never guards less
 * than the template says without saying so.
 */
export function readRateRules(template: CfnTemplate): RateRuleModel[] {
  const acls = new Map(resourcesOfType(template, 'AWS::WAFv2::WebACL'));
  const rules: RateRuleModel[] = [];
  for (const [, association] of resourcesOfType(template, 'AWS::WAFv2::WebACLAssociation')) {
    const arn = (association.Properties?.WebACLArn ?? {}) as { 'Fn::GetAtt'?: [string, string] };
    const aclId = arn['Fn::GetAtt']?.[0];
    const acl = aclId ? acls.get(aclId) : undefined;
    if (!acl) continue;
    const properties = (acl.Properties ?? {}) as Props;
    const bodies = (properties.CustomResponseBodies ?? {}) as Record<
      string,
      { Content?: string; ContentType?: string }
    >;
    for (const rule of (properties.Rules ?? []) as Props[]) {
      const rate = ((rule.Statement ?? {}) as Props).RateBasedStatement as Props | undefined;
      if (!rate) continue;
      const name = String(rule.Name);
      if ((rate.AggregateKeyType ?? 'IP') !== 'IP')
        throw new Error(`WAF rule ${name}: only per-IP rate-based rules are applied locally`);
      const block = ((rule.Action ?? {}) as Props).Block as Props | undefined;
      const custom = (block?.CustomResponse ?? undefined) as Props | undefined;
      const body = custom?.CustomResponseBodyKey ? bodies[String(custom.CustomResponseBodyKey)] : undefined;
      rules.push({
        name,
        priority: Number(rule.Priority ?? 0),
        limit: Number(rate.Limit),
        windowSeconds: Number(rate.EvaluationWindowSec ?? 300),
        ...scopeOf(name, rate.ScopeDownStatement as Props | undefined),
        answer: {
          statusCode: Number(custom?.ResponseCode ?? 403),
          headers: {
            ...Object.fromEntries(
              ((custom?.ResponseHeaders ?? []) as { Name: string; Value: string }[]).map((header) => [
                header.Name.toLowerCase(),
                header.Value,
              ]),
            ),
            ...(body
              ? {
                  'content-type': body.ContentType === 'APPLICATION_JSON' ? 'application/json' : 'text/plain',
                }
              : {}),
          },
          body: body?.Content ?? '',
        },
      });
    }
  }
  return rules.sort((a, b) => a.priority - b.priority);
}

function scopeOf(name: string, statement: Props | undefined): { pathPattern?: RegExp } {
  if (!statement) return {};
  const match = statement.RegexMatchStatement as Props | undefined;
  const field = (match?.FieldToMatch ?? {}) as Props;
  const transforms = ((match?.TextTransformations ?? []) as { Type: string }[]).map(({ Type }) => Type);
  if (!match || !('UriPath' in field) || transforms.join() !== 'URL_DECODE,LOWERCASE')
    throw new Error(
      `WAF rule ${name}: only a scope-down matching the decoded, lower-cased path is applied locally`,
    );
  return { pathPattern: new RegExp(String(match.RegexString)) };
}

/** The path as WAF's URL_DECODE and LOWERCASE leave it (a malformed escape stays as it is). */
function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path).toLowerCase();
  } catch {
    return path.toLowerCase();
  }
}

/**
 * Counts each client address's requests for each rule, as WAF's rate-based rules do: a client over
 * a rule's limit within its window is blocked until its rate drops below it; another client is not
 * held back by it. Rules are evaluated by priority, and the first to block ends the evaluation
 * (later rules do not count the request), as in WAF.
 */
/** Requests in one window above which a rule is not counted locally: no one machine sends them. */
const UNREACHABLE_LOCALLY = 1_000_000;

export class RateRules {
  private readonly seen = new Map<string, number[]>();

  constructor(
    private readonly rules: readonly RateRuleModel[],
    private readonly now: () => number = Date.now,
  ) {}

  /** The rule that blocks this request, or undefined; counts it toward each rule it reaches. */
  check(sourceIp: string, path: string): RateRuleModel | undefined {
    const decoded = decodedPath(path);
    const at = this.now();
    for (const rule of this.rules) {
      // A limit one machine cannot reach (the tests' and benchmarks' "unlimited") is not counted.
      if (rule.limit > UNREACHABLE_LOCALLY) continue;
      if (rule.pathPattern && !rule.pathPattern.test(decoded)) continue;
      const key = `${rule.name}\u0000${sourceIp}`;
      const times = this.seen.get(key) ?? [];
      // Oldest first: drop what left the window (the array stays at most the limit plus a few).
      const since = at - rule.windowSeconds * 1000;
      let stale = 0;
      while (stale < times.length && (times[stale] as number) <= since) stale++;
      if (stale > 0) times.splice(0, stale);
      times.push(at);
      this.seen.set(key, times);
      if (times.length > rule.limit) {
        // A client held over the limit keeps at most limit + 1 entries: the rest tell nothing more.
        times.splice(0, times.length - rule.limit - 1);
        return rule;
      }
    }
    return undefined;
  }
}
