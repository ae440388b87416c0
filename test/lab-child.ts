/**
 * A lab run that gets interrupted (used by test/lab-safety.test.ts): brings a scenario up, then waits. With
 * `teardown` as the second argument it starts taking the lab down and, once the removal is under way (namespaces
 * still there), interrupts itself with SIGINT — a Ctrl-C during teardown.
 */
import { labDown, labUp } from '../src/lab/lab.ts';
import { load } from './lab-helpers.ts';

const lab = await labUp(load(process.argv[2]!), { filters: 'compiled' });
process.stdout.write(`UP ${lab.prefix} ${lab.workDir}\n`);
if (process.argv[3] === 'teardown') {
  void labDown(lab);
  const t = setInterval(() => {
    if (!lab.down) return;
    clearInterval(t);
    process.stdout.write('TEARDOWN\n');
    process.kill(process.pid, 'SIGINT');
  }, 0);
}
setInterval(() => {}, 1000);
