// HEAD works wherever GET does (RFC 9110 §9.3.2), though openapi.yaml lists only GETs: the
// validator and the routers see a HEAD as the GET it mirrors. Node decided when the request
// arrived that this response carries no body, so the GET's body is never sent; its headers,
// Content-Length included, are.
import type { RequestHandler } from 'express';

export const headAsGet: RequestHandler = (req, _res, next) => {
  if (req.method === 'HEAD') req.method = 'GET';
  next();
};
