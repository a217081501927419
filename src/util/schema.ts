/**
 * A small JSON Schema builder with static types: `S.object({ a: S.string() })`
 * is the plain JSON Schema `{type:'object', properties:{a:{type:'string'}},
 * required:['a']}` and `Static<typeof it>` is `{ a: string }`.
 *
 * It covers only what tsoverlay's schemas use. `compileCheck` validates
 * store records and engine answers (first problem), `compileValidator` the
 * bodies Docker sends (every problem, for its answer). Both are type guards,
 * so checked values need no cast. We used TypeBox for this; its builder
 * alone cost about 20 MB of resident memory in a daemon that should stay small.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';

declare const STATIC: unique symbol;
declare const OPTIONAL: unique symbol;

/** A JSON Schema whose valid values have type T. */
export type Schema<T = unknown> = { readonly [key: string]: unknown; readonly [STATIC]?: T };
/** A property that may be absent. */
export type OptionalSchema<T = unknown> = Schema<T> & { readonly [OPTIONAL]: true };

export type Static<S> = S extends Schema<infer T> ? T : never;

type Props = Record<string, Schema>;
type OptionalKeys<P extends Props> = { [K in keyof P]: P[K] extends OptionalSchema ? K : never }[keyof P];
type RequiredKeys<P extends Props> = Exclude<keyof P, OptionalKeys<P>>;
type Flatten<T> = { [K in keyof T]: T[K] };
export type ObjectOf<P extends Props> = Flatten<{ [K in RequiredKeys<P>]: Static<P[K]> } & { [K in OptionalKeys<P>]?: Static<P[K]> }>;

const optionalProps = new WeakSet<object>();

export const S = {
  string: (opts: { pattern?: string; maxLength?: number } = {}): Schema<string> => ({ type: 'string', ...opts }),
  integer: (opts: { minimum?: number; maximum?: number } = {}): Schema<number> => ({ type: 'integer', ...opts }),
  boolean: (): Schema<boolean> => ({ type: 'boolean' }),
  null: (): Schema<null> => ({ type: 'null' }),
  unknown: (): Schema<unknown> => ({}),
  literal: <const V extends string | number>(value: V): Schema<V> => ({ const: value }),
  array: <T>(items: Schema<T>, opts: { maxItems?: number } = {}): Schema<T[]> => ({ type: 'array', items, ...opts }),
  record: <T>(values: Schema<T>): Schema<Record<string, T>> => ({ type: 'object', additionalProperties: values }),
  union: <M extends Schema[]>(...members: M): Schema<Static<M[number]>> => ({ anyOf: members }),
  optional: <T>(schema: Schema<T>): OptionalSchema<T> => {
    const copy = { ...schema };
    optionalProps.add(copy);
    return copy as OptionalSchema<T>;
  },
  object: <P extends Props>(properties: P): Schema<ObjectOf<P>> => ({
    type: 'object',
    properties,
    required: Object.keys(properties).filter((k) => !optionalProps.has(properties[k] as object)),
  }),
};

// Ajv ships CommonJS; load it the way its own package documents.
const require = createRequire(import.meta.url);
const AjvClass = (require('ajv') as { default: new (opts: object) => { compile(s: object): ValidateFunction } }).default;
let ajv: { compile(s: object): ValidateFunction } | undefined;

export interface Check<T> {
  (value: unknown): value is T;
  /** The first problem of the last failed check, for messages. */
  firstError(): string;
}

/**
 * A fast validator for values of a schema. It is compiled on first use: most
 * schemas are made at module load, and compiling them all would put Ajv's
 * work on every start of the plugin, before it serves Docker.
 */
export const compileCheck = <T>(schema: Schema<T>): Check<T> => {
  let validate: ValidateFunction | undefined;
  const compiled = (): ValidateFunction =>
    (validate ??= (ajv ??= new AjvClass({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false })).compile(schema));
  const check = ((value: unknown) => compiled()(value)) as Check<T>;
  check.firstError = () => {
    const e: ErrorObject | undefined = validate?.errors?.[0];
    return e ? `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}` : '';
  };
  return check;
};

// A second Ajv that reports every problem, for requests whose sender reads our answer (Docker).
let ajvAllErrors: { compile(s: object): ValidateFunction } | undefined;

export interface Validator<T> {
  (value: unknown): value is T;
  /**
   * Every problem of the last failed check, each `<name><path> <message>`,
   * joined by ", " (the wording Fastify uses for a body it refuses).
   */
  problems(name: string): string;
}

/** Like compileCheck, but a failed check lists all problems, not the first. */
export const compileValidator = <T>(schema: Schema<T>): Validator<T> => {
  let validate: ValidateFunction | undefined;
  const compiled = (): ValidateFunction =>
    (validate ??= (ajvAllErrors ??= new AjvClass({ allErrors: true, strict: true, coerceTypes: false, useDefaults: false })).compile(schema));
  const problems = (name: string): string =>
    (validate?.errors ?? []).map((e) => `${name}${e.instancePath} ${e.message ?? 'is invalid'}`).join(', ');
  return Object.assign((value: unknown): value is T => compiled()(value), { problems });
};
