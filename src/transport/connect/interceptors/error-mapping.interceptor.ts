import type { Interceptor } from '@connectrpc/connect';
import { toConnectError } from '../error-mapper.js';

/**
 * Every error leaving a handler becomes a status code here, through the one table
 * (toConnectError): expected failures keep their message and gain details, anything else is
 * INTERNAL. A promise `.catch` rather than an async wrapper: this runs on every call.
 */
export const errorMappingInterceptor: Interceptor = (next) => (req) =>
  next(req).catch((error: unknown) => {
    throw toConnectError(error);
  });
