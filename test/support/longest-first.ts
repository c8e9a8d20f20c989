import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest, longest first, as measured in a clean-clone `.ci/run` (seconds on an
 * idle 2-core machine). Without vitest's cache of durations (a clean clone has none) it starts files
 * by size, and a three-minute file started last was the suite's tail. Starting the longest first
 * (the classic longest-processing-time rule) keeps the workers evenly busy to the end. A file not
 * listed runs after these; the list only orders, so a stale figure costs time, never a failure.
 */
const MEASURED_SECONDS: Record<string, number> = {
  'test/e2e/email-jobs.test.ts': 143,
  'test/e2e/nonprofits-api.test.ts': 126,
  'test/e2e/dynamodb-outage.test.ts': 115,
  'test/e2e/lifecycle.test.ts': 98,
  'test/e2e/job-control.test.ts': 86,
  'test/integration/email-pipeline.test.ts': 60,
  'test/e2e/fuzz.test.ts': 49,
  'test/integration/email-delivery-once.test.ts': 41,
  'test/infra/sender-identity.test.ts': 25,
  'test/e2e/usage-plan.test.ts': 24,
  'test/infra/delivery.test.ts': 20,
  'test/infra/stack.test.ts': 17,
  'test/integration/iam-gate.test.ts': 11,
  'test/integration/job-control.test.ts': 8,
  'test/integration/delivery-claims.test.ts': 6,
  'test/infra/cold-start.test.ts': 5,
};

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const seconds = (spec: TestSpecification) =>
      MEASURED_SECONDS[relative(spec.project.config.root, spec.moduleId).split('\\').join('/')] ?? 0;
    // Stable: files not listed keep the base sequencer's order among themselves.
    return sorted
      .map((spec, index) => ({ spec, index }))
      .sort((a, b) => seconds(b.spec) - seconds(a.spec) || a.index - b.index)
      .map(({ spec }) => spec);
  }
}
