/**
 * The parts of zod the functions use, by name. `import { z } from 'zod'` hands over zod's whole
 * namespace, so esbuild keeps all of it in every bundle (every locale, JSON Schema conversion:
 * about 450 KB minified); named exports let it keep only what is used (about 85 KB). Functions'
 * code imports it as `import * as z from '…/zod'` and reads as zod's own examples do.
 */

export type { input, output, RefinementCtx, ZodRawShape, ZodType } from 'zod';
export {
  array,
  boolean,
  coerce,
  discriminatedUnion,
  email,
  enum,
  iso,
  literal,
  looseObject,
  number,
  object,
  record,
  strictObject,
  string,
  union,
  unknown,
  url,
  uuid,
  ZodError,
} from 'zod';
export type { $ZodIssue } from 'zod/v4/core';
