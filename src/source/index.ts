export * from './issue.ts';
export * from './origin.ts';
