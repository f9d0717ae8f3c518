// express-openapi-validator (5.6) finds a request's operation in its metadata middleware
// (middlewares/openapi.metadata.js, lookupRoute). On every request it lists its route map
// (Object.entries: an array per route), and for each route it tries until one matches looks up
// the route's pair and schemas, reads two app settings and compiles the route's path pattern
// (path-to-regexp). The routes and the spec never change once it has started, so this installs
// the same middleware with each route's pattern compiled once, tried in the same order: what
// remains per route tried is one regular expression. The operation found, its parameters and
// every refusal (404, 405, 400 for a malformed URI, which names its parameter here) are the
// original's: test/unit/route-matching compares the two on every operation of the contract.
// Express' own router is not affected.
import type { NextFunction, Request, Response } from 'express';
import { createRequire } from 'node:module';

/** The validator's context, as far as this middleware reads it (framework/openapi.context.js). */
interface OpenApiContext {
  apiDoc: { paths: Record<string, Record<string, unknown>> };
  expressRouteMap: Record<string, { basePath: string }>;
  openApiRouteMap: Record<string, Record<string, unknown>>;
  useRequestUrl?: boolean;
  ignoreUndocumented?: boolean;
  serial: number;
  routePair(route: string): { expressRoute: string; openApiRoute: string };
  shouldIgnoreRoute(path: string): boolean;
  isManagedRoute(path: string): boolean;
}
type ResponseApiDoc = { paths: Record<string, Record<string, unknown>> } | undefined;
type Middleware = (req: Request, res: Response, next: NextFunction) => void;
type ApplyMetadata = ((context: OpenApiContext, responseApiDoc: ResponseApiDoc) => Middleware) & {
  prepared?: true;
  original?: ApplyMetadata;
};
type HttpError = new (options: {
  path: string;
  message: string;
  headers?: Record<string, string>;
  errors?: Array<{ path: string; message: string }>;
}) => Error;

// The validator's own modules (resolved from its folder): the middleware's export, its errors.
const validator = createRequire(createRequire(import.meta.url).resolve('express-openapi-validator'));
/** The module whose export the validator calls to make its metadata middleware. */
export const metadataModule = validator('./middlewares/openapi.metadata') as {
  applyOpenApiMetadata: ApplyMetadata;
};
const { pathToRegexp } = validator('path-to-regexp') as {
  pathToRegexp: (path: string, options: object) => { regexp: RegExp; keys: Array<{ name: string }> };
};
const { BadRequest, MethodNotAllowed, NotFound } = validator('./framework/types') as {
  BadRequest: HttpError;
  MethodNotAllowed: HttpError;
  NotFound: HttpError;
};
const { httpMethods } = validator('./middlewares/parsers/schema.preprocessor') as {
  httpMethods: Set<string>;
};

interface PreparedRoute {
  expressRoute: string;
  openApiRoute: string;
  /** The route's key in the spec's paths. */
  pathKey: string;
  regexp: RegExp;
  paramKeys: string[];
}

/** The metadata middleware with its routes prepared once (the original's behaviour otherwise). */
export const applyPreparedMetadata: ApplyMetadata = (context, responseApiDoc) => {
  // Per pair of the app's settings (strict routing, case-sensitive routing): in practice one.
  const prepared = new Map<number, PreparedRoute[]>();
  const routesFor = (strict: boolean, sensitive: boolean): PreparedRoute[] => {
    const key = (strict ? 1 : 0) + (sensitive ? 2 : 0);
    let routes = prepared.get(key);
    if (!routes) {
      routes = Object.entries(context.expressRouteMap).map(([expressRoute, methods]) => {
        const { openApiRoute } = context.routePair(expressRoute);
        const { regexp, keys } = pathToRegexp(expressRoute, { sensitive, strict });
        return {
          expressRoute,
          openApiRoute,
          pathKey: openApiRoute.substring(methods.basePath.length),
          regexp,
          paramKeys: keys.map((k) => k.name),
        };
      });
      prepared.set(key, routes);
    }
    return routes;
  };

  const lookupRoute = (req: Request) => {
    const path = (context.useRequestUrl ? req.url : req.originalUrl).split('?')[0]!;
    const method = req.method.toLowerCase();
    const routes = routesFor(
      !!req.app.enabled('strict routing'),
      !!req.app.enabled('case sensitive routing'),
    );
    for (const route of routes) {
      const matched = route.regexp.exec(path);
      if (!matched) continue;
      const pathParams: Record<string, string> = {};
      route.paramKeys.forEach((key, i) => {
        try {
          pathParams[key] = decodeURIComponent(matched[i + 1]!);
        } catch {
          // The original says "malformed uri'" of the whole path: name the parameter instead.
          const message = 'has a malformed percent escape (each % must start two hex digits of UTF-8)';
          throw new BadRequest({
            path: `/path/${key}`,
            message: `The path parameter '${key}' ${message}.`,
            errors: [{ path: `/path/${key}`, message }],
          });
        }
      });
      return {
        route,
        pathParams,
        schema: context.apiDoc.paths[route.pathKey]![method],
        responseSchema: responseApiDoc?.paths[route.pathKey]![method],
      };
    }
    return undefined;
  };

  return (req, _res, next) => {
    const path = req.path.startsWith(req.baseUrl) ? req.path : `${req.baseUrl}/${req.path}`;
    if (context.shouldIgnoreRoute(path)) return next();
    const matched = lookupRoute(req);
    if (matched) {
      const { route, pathParams, schema } = matched;
      if (!schema) {
        // Prevents validation for routes which match on path but mismatch on method
        if (context.ignoreUndocumented) return next();
        throw new MethodNotAllowed({
          path: req.path,
          message: `${req.method} method not allowed`,
          headers: {
            Allow: Object.keys(context.openApiRouteMap[route.openApiRoute]!)
              .filter((key) => httpMethods.has(key.toLowerCase()))
              .join(', '),
          },
        });
      }
      const openapi: Record<string, unknown> = {
        expressRoute: route.expressRoute,
        openApiRoute: route.openApiRoute,
        pathParams,
        schema,
        serial: context.serial,
      };
      if (responseApiDoc) openapi._responseSchema = matched.responseSchema;
      (req as unknown as { openapi: unknown }).openapi = openapi;
      req.params = pathParams;
    } else if (context.isManagedRoute(path) && !context.ignoreUndocumented) {
      throw new NotFound({ path: req.path, message: 'not found' });
    }
    next();
  };
};

/** Makes the validator build the prepared middleware; once per process. */
export function prepareValidatorRouteMatching(): void {
  const current = metadataModule.applyOpenApiMetadata;
  if (current.prepared) return;
  metadataModule.applyOpenApiMetadata = Object.assign(
    (context: OpenApiContext, responseApiDoc: ResponseApiDoc) =>
      applyPreparedMetadata(context, responseApiDoc),
    { prepared: true as const, original: current },
  );
}
