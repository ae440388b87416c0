/**
 * Progress on long work: a line on stderr while it runs, only when stderr is a terminal (`Io.stderrIsTTY`);
 * silent otherwise, so pipes, files and tests see nothing of it.
 */
import type { Io } from './io.ts';

export interface Progress {
  /** Says how far it got (`12/200 hosts`). */
  update(detail: string): void;
  done(): void;
}

const SILENT: Progress = { update() {}, done() {} };

export function progress(io: Io, what: string): Progress {
  if (!io.stderrIsTTY) return SILENT;
  const start = Date.now();
  let last = '';
  const show = (detail: string) => {
    const line = `lvsdoctor: ${what}${detail ? ` ${detail}` : ''}…`;
    io.stderr(`\r\x1b[2K${line}`);
    last = line;
  };
  show('');
  return {
    update: show,
    done() {
      if (last) io.stderr(`\r\x1b[2Klvsdoctor: ${what} (${((Date.now() - start) / 1000).toFixed(1)} s)\n`);
    },
  };
}
