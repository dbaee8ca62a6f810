import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { Health } from '../../../gen/grpc/health/v1/health_pb.js';
import { kCaller } from '../management-caller.js';
import { kRequestId } from '../request-context.js';

/**
 * One audit line per call on the management port (`"audit":true`), naming the caller (see
 * management-caller), the method, the user acted on and the code the caller received. It runs
 * outermost, so it records refusals (PERMISSION_DENIED, INVALID_ARGUMENT) too. Health checks
 * are not audited: probes call them every few seconds and act on no one.
 */
export function managementAuditInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    const caller = req.contextValues.get(kCaller);
    const message: unknown = req.stream ? undefined : req.message;
    const userId = typeof message === 'object' && message !== null && 'userId' in message && typeof message.userId === 'string' ? message.userId.slice(0, 64) : undefined;
    const line = { audit: true, action: 'management', method: `${req.service.typeName}/${req.method.name}`, caller: caller.id, callerSource: caller.source, userId, requestId: req.contextValues.get(kRequestId) };
    try {
      const res = await next(req);
      logger.info({ ...line, code: 'OK' }, `audit management ${req.method.name} OK`);
      return res;
    } catch (error) {
      const code = Code[ConnectError.from(error).code];
      logger.info({ ...line, code }, `audit management ${req.method.name} ${code}`);
      throw error;
    }
  };
}
