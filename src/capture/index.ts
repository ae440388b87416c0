export * from './pcap.ts';
