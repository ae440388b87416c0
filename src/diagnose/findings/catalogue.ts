import { bridgedForwardDrop } from './bridged-forward-drop.ts';
import { conntrackInvalid, ipvsConnDeletedServer, pmtuBlackhole, quiescentTemplate } from './conversation.ts';
import { directorAntiSpoofing } from './director-anti-spoofing.ts';
import { filterDrop, probeFailed } from './generic.ts';
import { guestFirewallDrops } from './guest-firewall.ts';
import { hostNatCaptures } from './host-nat.ts';
import { ipLearningDhcpStatic } from './ip-learning-dhcp.ts';
import { keepalivedDefaultMethod, keepalivedDefaultProtocol, vmacBlocked, vrrpStrictDrops } from './keepalived.ts';
import type { FindingKind } from './kind.ts';
import { drReplyViaDirector, natForwardingOff, natReplyBypassesDirector, tunNoIpip, tunRpFilter } from './methods.ts';
import { pveHostForwardDrop } from './pve-host-forward.ts';
import { rsAntiSpoofing } from './rs-anti-spoofing.ts';
import { rsDirectUnreachableKind } from './rs-direct.ts';
import { ipLearningDirector, ipv6VipDropped } from './static-filters.ts';
import {
  directorVipMissing,
  drAcrossL3,
  drPortRemap,
  noUsableRealServer,
  persistenceSticks,
  rsArpProblem,
  rsVipMissing,
} from './static-ipvs.ts';
import { vipArpBlocked } from './vip-arp-blocked.ts';
import { vrrpAdvertsDropped, vrrpBackupAdvertsDropped, vrrpFailoverBroken, vrrpSplitBrain } from './vrrp.ts';

/** Most specific first: the first kind whose `detect` explains a trace wins; every `check` runs. */
export const FINDING_KINDS: readonly FindingKind[] = [
  ipLearningDhcpStatic,
  directorAntiSpoofing,
  vipArpBlocked,
  rsAntiSpoofing,
  directorVipMissing,
  rsVipMissing,
  rsArpProblem,
  drAcrossL3,
  drPortRemap,
  noUsableRealServer,
  persistenceSticks,
  natForwardingOff,
  natReplyBypassesDirector,
  drReplyViaDirector,
  tunRpFilter,
  tunNoIpip,
  ipLearningDirector,
  ipv6VipDropped,
  keepalivedDefaultProtocol,
  keepalivedDefaultMethod,
  vrrpStrictDrops,
  vmacBlocked,
  vrrpSplitBrain,
  vrrpAdvertsDropped,
  vrrpFailoverBroken,
  vrrpBackupAdvertsDropped,
  conntrackInvalid,
  pmtuBlackhole,
  hostNatCaptures,
  pveHostForwardDrop,
  bridgedForwardDrop,
  guestFirewallDrops,
  ipvsConnDeletedServer,
  quiescentTemplate,
  filterDrop,
  probeFailed,
  rsDirectUnreachableKind,
];
