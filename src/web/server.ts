/**
 * `lvsdoctor serve`: a Hono app on 127.0.0.1 only. GET / is the page, GET /api/model the model (contract.ts),
 * POST /api/what-if re-traces with fixes or parameter edits applied, GET /api/file/:n a fix's file as a download.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { WebModel, WhatIfRequest } from './contract.ts';
import { clientBundle, pageHtml } from './page.ts';
import { type WebSession, whatIf } from './what-if.ts';

export const LOOPBACK = '127.0.0.1';

function isWhatIfRequest(v: unknown): v is WhatIfRequest {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === 'string');
  return (
    strings(r.fixes) &&
    Array.isArray(r.params) &&
    r.params.every(
      (p: unknown) =>
        typeof p === 'object' &&
        p !== null &&
        typeof (p as Record<string, unknown>).host === 'string' &&
        typeof (p as Record<string, unknown>).port === 'string' &&
        typeof (p as Record<string, unknown>).name === 'string' &&
        strings((p as Record<string, unknown>).values),
    )
  );
}

export function webApp(session: WebSession, model: WebModel): Hono {
  const app = new Hono();
  const view = { places: model.topology.places, known: (f: string) => f in model.files };
  app.get('/', async (c) =>
    c.html(pageHtml({ title: `lvsdoctor — ${model.scenario.name}`, script: await clientBundle() })),
  );
  app.get('/api/model', (c) => c.json(model));
  app.post('/api/what-if', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ error: 'the body is not JSON' }, 400);
    }
    if (!isWhatIfRequest(body))
      return c.json({ error: 'expected { fixes: string[], params: { host, port, name, values: string[] }[] }' }, 400);
    const r = whatIf(session, view, body);
    return r.kind === 'ok' ? c.json(r.result) : c.json({ error: r.message }, 400);
  });
  app.get('/api/file', (c) => {
    const fix = model.fixes.find((f) => f.id === c.req.query('fix'));
    const a = fix?.artifacts.find((x) => x.path === c.req.query('path'));
    if (!a) return c.json({ error: 'no such fix file' }, 404);
    const name = a.path.split('/').pop() ?? 'fix.txt';
    return c.body(a.content, 200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-disposition': `attachment; filename="${name.replace(/"/g, '')}"`,
    });
  });
  return app;
}

export interface Running {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (`port` 0: a free port chosen by the kernel). */
export function listen(app: Hono, port: number): Promise<Running> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: LOOPBACK, port }, (info) => {
      resolve({
        url: `http://${LOOPBACK}:${info.port}/`,
        port: info.port,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
    server.on('error', reject);
  });
}
