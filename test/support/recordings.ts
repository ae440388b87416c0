/**
 * The project's own nwfilter recordings (fixtures/libvirt/recordings/<scenario>/): inputs written by lvsdoctor
 * (binding.xml, filter-*.xml), outputs recorded from a real libvirt 9.0 nwfilter driver by
 * scripts/record-nwfilter-recordings.sh (each folder's RECORDED.txt names the command and the versions).
 */
import { readFileSync } from 'node:fs';

export const RECORDINGS = new URL('../../fixtures/libvirt/recordings/', import.meta.url);

/** A recording's file as UTF-8 text, by its path below the recordings folder. */
export function readRecording(path: string): string {
  return readFileSync(new URL(path, RECORDINGS), 'utf8');
}
