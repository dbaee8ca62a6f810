import type { Interceptor } from '@connectrpc/connect';
import { toConnectError } from '../error-mapper.js';

/** Every error leaving a handler goes through the one mapping. */
export const errorMappingInterceptor: Interceptor = (next) => async (req) => {
  try {
    return await next(req);
  } catch (error) {
    throw toConnectError(error);
  }
};
