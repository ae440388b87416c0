import { directorAntiSpoofing } from './director-anti-spoofing.ts';
import { filterDrop, probeFailed } from './generic.ts';
import type { FindingKind } from './kind.ts';
import { rsAntiSpoofing } from './rs-anti-spoofing.ts';
import { vipArpBlocked } from './vip-arp-blocked.ts';

/** Most specific first: the first kind that explains a trace wins. */
export const FINDING_KINDS: readonly FindingKind[] = [
  directorAntiSpoofing,
  vipArpBlocked,
  rsAntiSpoofing,
  filterDrop,
  probeFailed,
];
