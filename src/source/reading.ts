/**
 * What lvsdoctor is reading right now, for the one-line message of an internal error ("while reading
 * host1/vm.xml"). Loaders note each file before reading it; nothing else depends on it.
 */
let current: string | undefined;

/** Notes that `file` is being read (the last one noted is named if something unexpected happens). */
export function noteReading(file: string): void {
  current = file;
}

/** The file noted last, if any. */
export function currentInput(): string | undefined {
  return current;
}

/** Forgets the file noted (at the start of a command). */
export function resetCurrentInput(): void {
  current = undefined;
}
