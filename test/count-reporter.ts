// Prints the closing line CI reads: `N passed, N failed, N skipped`, as the very last line of the run. Before it, one
// line per reason a test gave for skipping (tests named `skipped: REASON`, see test/support/conformance.ts), so a
// run says what it did not check.
import type { Reporter, TestModule } from 'vitest/node';

export default class CountReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const reasons = new Map<string, number>();
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else {
          skipped++;
          const reason = /(?:^|, )skipped: (.*)$/.exec(test.name)?.[1];
          if (reason !== undefined) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        }
      }
      // A module that failed without a failed test (it did not load, or a beforeAll/afterAll hook failed) must
      // count as a failure too.
      if (mod.state() === 'failed' && ![...mod.children.allTests()].some((t) => t.result().state === 'failed'))
        failed++;
    }
    failed += unhandledErrors.length;
    // Defer so the lines come after vitest's own summary.
    process.on('beforeExit', () => {
      for (const [reason, n] of reasons) process.stdout.write(`skipped (${n}): ${reason}\n`);
      process.stdout.write(`${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    });
  }
}
