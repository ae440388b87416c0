#!/usr/bin/env node
import { main } from '../dist/cli.mjs';

process.exitCode = await main(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  cwd: process.cwd(),
  stderrIsTTY: process.stderr.isTTY === true,
  // NO_COLOR (no-color.org): set and not empty disables colour.
  color: process.stdout.isTTY === true && !process.env.NO_COLOR,
});
