import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

// Every block marked `<!-- lvsdoctor-output: ARGS -->` in the README must be what `lvsdoctor ARGS` prints now.
const readme = readFileSync('README.md', 'utf8');
const blocks = [...readme.matchAll(/<!-- lvsdoctor-output: (.+?) -->\n```\n([\s\S]*?)\n```/g)].map((m) => ({
  args: m[1]!.split(' '),
  text: m[2]!,
}));

describe('the README', () => {
  it('pastes real output', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  for (const b of blocks)
    it(`shows what lvsdoctor ${b.args.join(' ')} prints`, async () => {
      const r = await runCli(...b.args);
      if (process.env.UPDATE_GOLDEN === '1') {
        // Rewrite the block in place; review the diff before committing.
        const now = readFileSync('README.md', 'utf8');
        const marker = `<!-- lvsdoctor-output: ${b.args.join(' ')} -->\n\`\`\`\n`;
        const start = now.indexOf(marker) + marker.length;
        const end = now.indexOf('\n```', start);
        writeFileSync('README.md', now.slice(0, start) + r.stdout.trimEnd() + now.slice(end));
        return;
      }
      expect(r.stdout.trimEnd()).toBe(b.text);
    });

  it('names the test command that .ci/run runs', () => {
    const ci = readFileSync('.ci/run', 'utf8');
    expect(readme).toContain('bash scripts/install-test-deps.sh && npm test');
    expect(ci).toContain('bash scripts/install-test-deps.sh && npm test');
  });
});
