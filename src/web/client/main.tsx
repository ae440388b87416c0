/**
 * The page's entry: the model embedded in the page (the offline report) or fetched from the server, then the app.
 * The page decides nothing: every verdict, path, rule and origin comes from the model (src/web/contract.ts).
 */
import { render } from 'preact';
import type { WebModel } from '../contract.ts';
import { App } from './app.tsx';

async function loadModel(): Promise<WebModel> {
  const embedded = document.getElementById('lvsdoctor-model');
  if (embedded?.textContent) return JSON.parse(embedded.textContent) as WebModel;
  const r = await fetch('api/model');
  if (!r.ok) throw new Error(`the server answered ${r.status} for the model`);
  return (await r.json()) as WebModel;
}

const root = document.getElementById('app')!;
loadModel().then(
  (model) => {
    root.textContent = '';
    render(<App model={model} />, root);
  },
  (e: unknown) => {
    root.textContent = `lvsdoctor: could not load the diagnosis: ${(e as Error).message}`;
  },
);
