/**
 * The part of a host listing that belongs to one libvirt port: its chains (`libvirt-I-<if>`, `I-<if>-…`, `FI-<if>`,
 * …), the rules that name it (`-i <if>`, `--physdev-in <if>`), and the global lines (tables, built-in chains,
 * libvirt's global chains). Used to compare what libvirt installed for one port on a host with many ports.
 */

function mentions(text: string, port: string): boolean {
  const esc = port.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[\\s-])${esc}($|[\\s-])`).test(text);
}

/**
 * Keeps the lines of `ebtables -L`, `ebtables-save`, `iptables-save` or `iptables -S` text that concern `port`;
 * lines that concern other ports (names matching `otherPorts`) are dropped, and `entries: N` counts of built-in
 * chains are removed (they count every port's hooks).
 */
export function portSlice(text: string, port: string, otherPorts: RegExp): string {
  const out: string[] = [];
  const isOther = (s: string) => !mentions(s, port) && otherPorts.test(s);
  if (text.startsWith('Bridge table:')) {
    let keep = true;
    for (const line of text.split('\n')) {
      const m = /^Bridge chain: ([^,]+), entries: \d+, (policy: .*)$/.exec(line);
      if (m) {
        const name = m[1]!;
        const builtin = /^[A-Z]+$/.test(name);
        keep = builtin || mentions(name, port);
        if (keep) out.push(builtin ? `Bridge chain: ${name}, ${m[2]}` : line);
        continue;
      }
      if (!keep) continue;
      if (line !== '' && isOther(line)) continue;
      out.push(line);
    }
    return out.join('\n');
  }
  for (const line of text.split('\n')) {
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0] ?? '';
      if (mentions(name, port) || !otherPorts.test(name)) out.push(line);
      continue;
    }
    const a = /^-A (\S+)(.*)$/.exec(line);
    if (a) {
      if (mentions(a[1]!, port) || mentions(a[2]!, port) || !isOther(line)) out.push(line);
      continue;
    }
    if (/^-N /.test(line)) {
      if (!isOther(line)) out.push(line);
      continue;
    }
    if (line.startsWith('#')) continue;
    out.push(line);
  }
  return out.join('\n');
}
