// Short names for the types openapi-typescript generates from the contract (generated/openapi.yaml).
import type { components, operations } from '../generated/openapi.js';

export type Schemas = components['schemas'];
export type Operation = keyof operations;

type Content<T> = T extends { content: { 'application/json': infer C } } ? C : never;

/** The JSON body an operation accepts. */
export type RequestBody<Op extends Operation> = Content<NonNullable<operations[Op]['requestBody']>>;
/** The query parameters of an operation, after the validator has coerced and defaulted them. */
export type Query<Op extends Operation> = NonNullable<operations[Op]['parameters']['query']>;
