import fc from 'fast-check';

/**
 * Hostile variations of a valid value (an event, a request, a manifest), for property-based fault
 * tests: one field replaced by junk of another type, removed, or joined by a field nobody expects.
 */

export type FieldPath = (string | number)[];

/** Every path inside `value` (objects and arrays, including the containers themselves), root excluded. */
export function fieldPaths(value: unknown, prefix: FieldPath = []): FieldPath[] {
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => [[...prefix, index], ...fieldPaths(item, [...prefix, index])]);
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => [
      [...prefix, key],
      ...fieldPaths(item, [...prefix, key]),
    ]);
  }
  return [];
}

export function getAt(value: unknown, path: FieldPath): unknown {
  return path.reduce<unknown>((current, key) => (current as Record<string | number, unknown>)?.[key], value);
}

/** A deep copy with `path` set to `replacement` (or removed when `remove`). */
export function withField(value: unknown, path: FieldPath, replacement: unknown, remove = false): unknown {
  const copy = structuredClone(value);
  if (path.length === 0) return replacement;
  const parent = getAt(copy, path.slice(0, -1)) as Record<string | number, unknown>;
  const key = path.at(-1)!;
  if (remove) {
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else delete parent[key];
  } else {
    parent[key] = replacement;
  }
  return copy;
}

/** A value nested `depth` levels deep in arrays and objects. */
export function deeplyNested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { nested: value };
  return value;
}

/** Junk of every shape: wrong types, huge and odd numbers, huge and odd strings, nested junk. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, true, false, 0, -1, 0.5, 2 ** 53, -(2 ** 63), 1e308, Number.NaN),
  fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, ''),
  fc.double(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\0', '../../etc/passwd', '/etc/passwd', 'a\\b', '\u202e\u0000\uffff', '💥'.repeat(50)),
  // Huge strings: a megabyte, and a hundred kilobytes of 4-byte characters.
  fc
    .constantFrom(
      () => 'x'.repeat(1 << 20),
      () => '🚀'.repeat(25_000),
    )
    .map((make) => make()),
  fc.constant(deeplyNested(2_000)),
  fc.anything({ maxDepth: 3, maxKeys: 5 }),
  fc.constantFrom({ __proto__: null }, JSON.parse('{"__proto__": {"polluted": true}}'), [[[]]], {}),
);

export type Mutation =
  | { kind: 'replace'; path: FieldPath; value: unknown }
  | { kind: 'remove'; path: FieldPath }
  | { kind: 'extra'; path: FieldPath; key: string; value: unknown };

/** One mutation of `value`: a field replaced by junk, a field removed, or an extra field added. */
export function mutationOf(value: unknown): fc.Arbitrary<Mutation> {
  const paths = fieldPaths(value);
  const containers: FieldPath[] = [
    [],
    ...paths.filter((p) => {
      const item = getAt(value, p);
      return typeof item === 'object' && item !== null && !Array.isArray(item);
    }),
  ];
  const extraKey = fc.oneof(
    fc.constantFrom('__proto__', 'constructor', 'extra', '', '💥', 'a'.repeat(10_000)),
    fc.string({ maxLength: 12 }),
  );
  return fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), path: fc.constantFrom(...paths), value: junk }),
    fc.record({ kind: fc.constant('remove' as const), path: fc.constantFrom(...paths) }),
    fc.record({
      kind: fc.constant('extra' as const),
      path: fc.constantFrom(...containers),
      key: extraKey,
      value: junk,
    }),
  );
}

export function applyMutation(value: unknown, mutation: Mutation): unknown {
  switch (mutation.kind) {
    case 'replace':
      return withField(value, mutation.path, mutation.value);
    case 'remove':
      return withField(value, mutation.path, undefined, true);
    case 'extra': {
      const copy = structuredClone(value) as Record<string, unknown>;
      const target = (mutation.path.length === 0 ? copy : getAt(copy, mutation.path)) as Record<
        string,
        unknown
      >;
      Object.defineProperty(target, mutation.key, {
        value: mutation.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      return copy;
    }
  }
}

/** Whether two field paths lie on one branch (one is a prefix of the other). */
export function onOneBranch(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (String(a[i]) !== String(b[i])) return false;
  return true;
}
