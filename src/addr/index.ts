export * from './ipv4.ts';
export * from './ipv6.ts';
export * from './mac.ts';
export * from './prefix.ts';
