export * from './ebtables-eval.ts';
export * from './ebtables-model.ts';
export * from './ebtables-render.ts';
export * from './iptables-eval.ts';
export * from './iptables-model.ts';
export * from './iptables-render.ts';
export * from './names.ts';
