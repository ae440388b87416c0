/** JSON output of the commands: the serializers live with the traces (`src/trace/trace-json.ts`), shared with the web app. */
export { originJson, toJsonText, traceJson } from '../trace/trace-json.ts';
