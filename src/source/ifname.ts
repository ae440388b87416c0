/**
 * Network interface names as the Linux kernel accepts them (`dev_valid_name()` in net/core/dev.c): 1 to 15 bytes
 * (IFNAMSIZ 16 with the NUL), not `.` or `..`, and no `/`, `:` or white space (the kernel's `isspace()`, which
 * also counts the byte 0xA0). A tap, bridge or host interface named otherwise cannot exist, so a configuration or
 * listing that names one is bad input — refused where it is read, before the name reaches a path or a command.
 * (Other control characters pass, as in the kernel and `ip link`: printed commands quote them.)
 */

/** What the kernel accepts, for messages. */
export const IFNAME_RULE = "the kernel accepts 1 to 15 bytes, not '.' or '..', without '/', ':' or white space";

/** Why the kernel refuses `name` as an interface name, or undefined when it accepts it. */
export function ifnameProblem(name: string): string | undefined {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0) return 'it is empty';
  if (bytes.length > 15) return `it is ${bytes.length} bytes long`;
  if (name === '.' || name === '..') return `'${name}' is reserved`;
  for (const b of bytes) {
    if (b === 0x2f) return "it holds '/'";
    if (b === 0x3a) return "it holds ':'";
    // isspace() of lib/ctype.c: \t \n \v \f \r, space and 0xA0.
    if ((b >= 0x09 && b <= 0x0d) || b === 0x20 || b === 0xa0) return 'it holds white space';
  }
  return undefined;
}

/** One line: `<target dev> "a/b" cannot be an interface name: it holds '/'; the kernel accepts …`. */
export function ifnameMessage(what: string, name: string, problem: string): string {
  const shown = JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
  return `${what} ${shown} cannot be an interface name: ${problem}; ${IFNAME_RULE}`;
}
