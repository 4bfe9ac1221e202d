import { readFileSync } from 'node:fs';
import { round } from './stats.mjs';

const SPECIAL = new Set([
  '(root)',
  '(program)',
  '(idle)',
  '(garbage collector)',
]);
// Scheduling frames under nearly every sample: noise in an inclusive ranking.
const DISPATCH = new Set(['node:internal/process', 'node:internal/timers']);

/** Where a frame's code lives: an npm package, a service file, a node core area, or a V8 bucket. */
function categoryOf(callFrame) {
  const { url, functionName } = callFrame;
  if (!url) return SPECIAL.has(functionName) ? functionName : '(native)';
  if (url.startsWith('node:')) {
    return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + '/node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const dist = url.indexOf('/dist/src/');
  if (dist >= 0) return `service:${url.slice(dist + '/dist/src/'.length)}`;
  return url.replace(/^file:\/\//, '');
}

function shortUrl(url) {
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

function functionKey(callFrame) {
  const name = callFrame.functionName || '(anonymous)';
  if (!callFrame.url) return name;
  return `${name} ${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}`;
}

/**
 * Self and inclusive time of a V8 .cpuprofile, by function and by category
 * (package / service file / node core). Inclusive time counts each category
 * or function once per sample, so recursion does not inflate it.
 */
export function summarizeCpuProfile(path, top = 15) {
  const profile = JSON.parse(readFileSync(path, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes)
    for (const c of n.children ?? []) parent.set(c, n.id);

  const totalUs = profile.endTime - profile.startTime;
  const samples = profile.samples ?? [];
  const perSampleMs = samples.length ? totalUs / samples.length / 1000 : 0;

  const selfFn = new Map();
  const selfCat = new Map();
  const inclCat = new Map();
  const inclServiceFn = new Map();
  const add = (map, key, ms) => map.set(key, (map.get(key) ?? 0) + ms);
  let idleMs = 0;

  for (const id of samples) {
    const node = byId.get(id);
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') {
      idleMs += perSampleMs;
      continue;
    }
    add(selfFn, functionKey(cf), perSampleMs);
    add(selfCat, categoryOf(cf), perSampleMs);
    const seenCat = new Set();
    const seenFn = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur).callFrame;
      const cat = categoryOf(frame);
      if (frame.functionName === '(root)') continue;
      if (!seenCat.has(cat) && !DISPATCH.has(cat)) {
        seenCat.add(cat);
        add(inclCat, cat, perSampleMs);
      }
      if (cat.startsWith('service:')) {
        const key = functionKey(frame);
        if (!seenFn.has(key)) {
          seenFn.add(key);
          add(inclServiceFn, key, perSampleMs);
        }
      }
    }
  }

  const busyMs = totalUs / 1000 - idleMs;
  const list = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({
        name,
        ms: round(ms, 1),
        pctOfBusy: round((100 * ms) / busyMs, 1),
      }));

  return {
    durationMs: round(totalUs / 1000, 0),
    busyMs: round(busyMs, 0),
    idleMs: round(idleMs, 0),
    samples: samples.length,
    topSelfFunctions: list(selfFn),
    selfByCategory: list(selfCat),
    inclusiveByCategory: list(inclCat),
    inclusiveServiceFunctions: list(inclServiceFn),
  };
}
