/** A lab run that gets interrupted (used by test/lab-safety.test.ts): brings a scenario up, then waits. */
import { labUp } from '../src/lab/lab.ts';
import { load } from './lab-helpers.ts';

const lab = await labUp(load(process.argv[2]!), { filters: 'compiled' });
process.stdout.write(`UP ${lab.prefix}\n`);
setInterval(() => {}, 1000);
