export * from './ebtables-eval.ts';
export * from './ebtables-model.ts';
export * from './ebtables-render.ts';
export * from './names.ts';
