/**
 * Link-layer types of capture files and how lvsdoctor turns each into its frame model.
 *
 * Decision: every packet is converted to an **Ethernet view** (the `EthernetFrame` of src/wire), because the rest
 * of the project (renderer, evaluator, simulator) speaks Ethernet. Link types that carry no or only some MAC
 * addresses get zero MACs in the view, and `LinkView.macs` says which addresses are real, so the correlation never
 * compares or reports a MAC the capture did not carry:
 *
 * | link type | `macs` | notes |
 * | --- | --- | --- |
 * | Ethernet (1) | `both` | 802.1Q/802.1ad tags kept |
 * | Linux cooked SLL (113) | `src` | the one address is the sender's; packet type (to us, outgoing…) kept |
 * | Linux cooked SLL2 (276) | `src` | as SLL, plus the interface index |
 * | raw IP (101, 12, 14, 228, 229) | `none` | ethertype from the IP version |
 * | BSD loopback / null (0), OpenBSD loop (108) | `none` | address family in the writer's byte order (loop: network order) |
 */
import { type Issue, issue } from '../source/issue.ts';
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6 } from '../wire/types.ts';
import { LINKTYPE_ETHERNET } from './pcap.ts';

export const LINKTYPE_NULL = 0;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_RAW_12 = 12;
export const LINKTYPE_RAW_14 = 14;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

export const SLL_HEADER_LEN = 16;
export const SLL2_HEADER_LEN = 20;

/** Which MAC addresses of the Ethernet view are real. */
export type MacKnowledge = 'both' | 'src' | 'none';

/** Linux packet types as SLL/SLL2 carry them. */
export const SLL_PACKET_TYPES = ['host', 'broadcast', 'multicast', 'otherhost', 'outgoing'] as const;
export type SllPacketType = (typeof SLL_PACKET_TYPES)[number];

export interface LinkView {
  /** An Ethernet frame (14-byte header, then the network layer) equivalent to the captured packet. */
  readonly bytes: Uint8Array;
  readonly macs: MacKnowledge;
  /** From SLL/SLL2: whether the packet was received (host, broadcast…) or sent (`outgoing`). */
  readonly packetType?: SllPacketType;
}

export function isSupportedLinkType(t: number): boolean {
  return linkName(t) !== undefined;
}

export function linkName(t: number): string | undefined {
  switch (t) {
    case LINKTYPE_NULL:
      return 'null';
    case LINKTYPE_LOOP:
      return 'loop';
    case LINKTYPE_ETHERNET:
      return 'ethernet';
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_12:
    case LINKTYPE_RAW_14:
      return 'raw';
    case LINKTYPE_IPV4:
      return 'ipv4';
    case LINKTYPE_IPV6:
      return 'ipv6';
    case LINKTYPE_LINUX_SLL:
      return 'linux-sll';
    case LINKTYPE_LINUX_SLL2:
      return 'linux-sll2';
    default:
      return undefined;
  }
}

/** MAC knowledge of a link type (undefined for unsupported ones). */
export function linkMacs(t: number): MacKnowledge | undefined {
  if (t === LINKTYPE_ETHERNET) return 'both';
  if (t === LINKTYPE_LINUX_SLL || t === LINKTYPE_LINUX_SLL2) return 'src';
  return isSupportedLinkType(t) ? 'none' : undefined;
}

/**
 * Where the network layer starts and what it is, without allocating. Returns -1 when the packet is too short or the
 * link type is unsupported. `out[0]` receives the ethertype, `out[1]` the offset of the sender's MAC (-1 if none).
 */
export function locateNetwork(t: number, b: Uint8Array, off: number, len: number, out: Int32Array): number {
  switch (t) {
    case LINKTYPE_ETHERNET: {
      if (len < 14) return -1;
      out[0] = (b[off + 12]! << 8) | b[off + 13]!;
      out[1] = off + 6;
      return off + 14;
    }
    case LINKTYPE_LINUX_SLL: {
      if (len < SLL_HEADER_LEN) return -1;
      out[0] = (b[off + 14]! << 8) | b[off + 15]!;
      const hatype = (b[off + 2]! << 8) | b[off + 3]!;
      const alen = (b[off + 4]! << 8) | b[off + 5]!;
      out[1] = hatype === 1 && alen === 6 ? off + 6 : -1;
      return off + SLL_HEADER_LEN;
    }
    case LINKTYPE_LINUX_SLL2: {
      if (len < SLL2_HEADER_LEN) return -1;
      out[0] = (b[off]! << 8) | b[off + 1]!;
      const hatype = (b[off + 8]! << 8) | b[off + 9]!;
      out[1] = hatype === 1 && b[off + 11] === 6 ? off + 12 : -1;
      return off + SLL2_HEADER_LEN;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_12:
    case LINKTYPE_RAW_14:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6: {
      if (len < 1) return -1;
      const v = b[off]! >> 4;
      out[0] = v === 6 ? ETHERTYPE_IPV6 : v === 4 ? ETHERTYPE_IPV4 : 0;
      out[1] = -1;
      return off;
    }
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      if (len < 4) return -1;
      // The family is in the writer's byte order; 2 is AF_INET everywhere, IPv6 varies (10, 24, 28, 30).
      const fam = b[off]! === 0 ? b[off + 3]! : b[off]!;
      out[0] = fam === 2 ? ETHERTYPE_IPV4 : fam === 10 || fam === 24 || fam === 28 || fam === 30 ? ETHERTYPE_IPV6 : 0;
      out[1] = -1;
      return off + 4;
    }
    default:
      return -1;
  }
}

const scratch = new Int32Array(2);

/**
 * The Ethernet view of one captured packet. Ethernet packets are returned as they are (no copy); others get a
 * synthesized 14-byte header with zero MACs except the sender's address when SLL/SLL2 carried it.
 */
export function toEthernetView(linkType: number, bytes: Uint8Array): LinkView | undefined {
  if (linkType === LINKTYPE_ETHERNET) return { bytes, macs: 'both' };
  const l3 = locateNetwork(linkType, bytes, 0, bytes.length, scratch);
  if (l3 < 0) return undefined;
  const out = new Uint8Array(14 + bytes.length - l3);
  const srcAt = scratch[1]!;
  if (srcAt >= 0) out.set(bytes.subarray(srcAt, srcAt + 6), 6);
  out[12] = scratch[0]! >> 8;
  out[13] = scratch[0]! & 0xff;
  out.set(bytes.subarray(l3), 14);
  const macs: MacKnowledge = srcAt >= 0 ? 'src' : 'none';
  let packetType: SllPacketType | undefined;
  if (linkType === LINKTYPE_LINUX_SLL) packetType = SLL_PACKET_TYPES[(bytes[0]! << 8) | bytes[1]!];
  else if (linkType === LINKTYPE_LINUX_SLL2) packetType = SLL_PACKET_TYPES[bytes[10]!];
  return packetType === undefined ? { bytes: out, macs } : { bytes: out, macs, packetType };
}

/** Names (libpcap's `LINKTYPE_…`) of link types seen in captures that lvsdoctor does not decode. */
const UNSUPPORTED_NAMES: Readonly<Record<number, string>> = {
  6: 'IEEE802_5',
  8: 'SLIP',
  9: 'PPP',
  50: 'PPP_HDLC',
  51: 'PPP_ETHER',
  104: 'C_HDLC',
  105: 'IEEE802_11',
  107: 'FRELAY',
  127: 'IEEE802_11_RADIO',
  143: 'DOCSIS',
  178: 'JUNIPER_ETHER',
  192: 'PPI',
  195: 'IEEE802_15_4_WITHFCS',
  201: 'BLUETOOTH_HCI_H4_WITH_PHDR',
  220: 'USB_LINUX_MMAPPED',
  239: 'NFLOG',
  249: 'NETANALYZER',
  252: 'WIRESHARK_UPPER_PDU',
};

/** An `unsupported` issue for a link type lvsdoctor cannot decode. */
export function linkTypeIssue(file: string, linkType: number, where: string): Issue {
  const name = UNSUPPORTED_NAMES[linkType];
  const what = name ? `${linkType} (LINKTYPE_${name})` : `${linkType}`;
  return {
    ...issue(
      'capture-linktype',
      `${where}: link type ${what} is not supported (lvsdoctor reads Ethernet, Linux cooked SLL/SLL2, raw IP, NULL/loop)`,
      { file, line: 0 },
    ),
    unsupported: true,
  };
}
