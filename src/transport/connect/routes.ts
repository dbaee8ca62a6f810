import type { ConnectRouter } from '@connectrpc/connect';
import type { ReadinessPort } from '../../application/ports/readiness.port.js';
import type { AuthorizationCheckMetrics, SigningKeyStatus } from '../../application/ports/request-authorization.port.js';
import { Authorization, file_envoy_service_auth_v3_external_auth, type CheckRequest } from '../../gen/envoy/service/auth/v3/external_auth_pb.js';
import { file_google_rpc_error_details } from '../../gen/google/rpc/error_details_pb.js';
import { Health, file_grpc_health_v1_health } from '../../gen/grpc/health/v1/health_pb.js';
import * as reflectionV1Pb from '../../gen/grpc/reflection/v1/reflection_pb.js';
import * as reflectionV1alphaPb from '../../gen/grpc/reflection/v1alpha/reflection_pb.js';
import { IdentityService, file_identity_v1_identity, type VerifyTokenRequest } from '../../gen/identity/v1/identity_pb.js';
import { file_identity_v1_events } from '../../gen/identity/v1/events_pb.js';
import { UserManagementService, file_identity_v1_user_management } from '../../gen/identity/v1/user_management_pb.js';
import { readCheckAuthorization } from './check-request.reader.js';
import { readVerifyToken } from './verify-token-request.reader.js';
import { encodeVerifyTokenResponse } from './verify-token-response.encoder.js';
import { authorizationHeader, ExtAuthzServiceHandler, type ExtAuthzOptions } from './ext-authz.service.js';
import { HealthServiceHandler } from './health.service.js';
import { IdentityServiceHandler, type IdentityUseCases } from './identity.service.js';
import { ManagementServiceHandler, type ManagementUseCases } from './management.service.js';
import { ReflectionResponder, reflectionV1, reflectionV1alpha } from './reflection.service.js';
import type { FastUnaryMethod } from './unary-fast-path.js';

export interface RouteDeps {
  readonly useCases: IdentityUseCases;
  readonly readiness: ReadinessPort;
  /** How long one grpc.health.v1.Health/Watch stream lives. */
  readonly healthWatchLifetimeMs: number;
  /** Envoy ext_authz Check, answered with the same VerifyToken use case as IdentityService. */
  readonly extAuthz: ExtAuthzOptions & {
    readonly keys: SigningKeyStatus;
    readonly metrics: AuthorizationCheckMetrics;
  };
}

const SERVED = [IdentityService, Authorization, Health, reflectionV1Pb.ServerReflection, reflectionV1alphaPb.ServerReflection];

/**
 * Every service on the API port, registered in one place, and the hot unary methods the fast
 * path answers (unary-fast-path.ts) with the same handler instances.
 */
export function routes(deps: RouteDeps): { register: (router: ConnectRouter) => void; fastUnary: FastUnaryMethod[] } {
  const files = [
    file_identity_v1_identity,
    file_identity_v1_events,
    file_envoy_service_auth_v3_external_auth,
    file_grpc_health_v1_health,
    reflectionV1Pb.file_grpc_reflection_v1_reflection,
    reflectionV1alphaPb.file_grpc_reflection_v1alpha_reflection,
    // The error details we send, so that tools can decode them without the .proto files.
    file_google_rpc_error_details,
  ];
  const responder = new ReflectionResponder(files, SERVED.map((service) => service.typeName));
  const identity = new IdentityServiceHandler(deps.useCases);
  const { keys, metrics, ...extAuthzOptions } = deps.extAuthz;
  const extAuthz = new ExtAuthzServiceHandler({ verifyToken: deps.useCases.verifyToken, keys, metrics }, extAuthzOptions);
  const fastUnary: FastUnaryMethod[] = [
    {
      method: IdentityService.method.verifyToken,
      // VerifyToken reads the token only: the fast path hands it just that (see readVerifyToken).
      fromMessage: (req: VerifyTokenRequest) => req.token,
      decode: readVerifyToken,
      encode: encodeVerifyTokenResponse,
      answer: (token: string) => identity.verify(token),
      answerNow: (token: string) => identity.verifyNow(token),
    },
    {
      method: Authorization.method.check,
      // Check reads one header of the request: the fast path hands it only that (see readCheckAuthorization).
      fromMessage: (req: CheckRequest) => authorizationHeader(req.attributes?.request?.http),
      decode: readCheckAuthorization,
      answer: (authorization: string | undefined) => extAuthz.checkAuthorization(authorization),
      answerNow: (authorization: string | undefined) => extAuthz.checkAuthorizationNow(authorization),
    },
  ];
  const register = (router: ConnectRouter) => {
    router.service(IdentityService, identity);
    router.service(Authorization, extAuthz);
    router.service(Health, new HealthServiceHandler(deps.readiness, { watchLifetimeMs: deps.healthWatchLifetimeMs }));
    router.service(reflectionV1Pb.ServerReflection, reflectionV1(responder));
    router.service(reflectionV1alphaPb.ServerReflection, reflectionV1alpha(responder));
  };
  return { register, fastUnary };
}

export interface ManagementRouteDeps {
  readonly useCases: ManagementUseCases;
  readonly readiness: ReadinessPort;
  readonly healthWatchLifetimeMs: number;
}

const MANAGEMENT_SERVED = [UserManagementService, Health, reflectionV1Pb.ServerReflection, reflectionV1alphaPb.ServerReflection];

/**
 * Every service on the management port: user management, with its own health and reflection.
 * IdentityService is not here, and UserManagementService is not on the API port.
 */
export function managementRoutes(deps: ManagementRouteDeps) {
  const files = [
    file_identity_v1_user_management,
    file_grpc_health_v1_health,
    reflectionV1Pb.file_grpc_reflection_v1_reflection,
    reflectionV1alphaPb.file_grpc_reflection_v1alpha_reflection,
    file_google_rpc_error_details,
  ];
  const responder = new ReflectionResponder(files, MANAGEMENT_SERVED.map((service) => service.typeName));
  return (router: ConnectRouter) => {
    router.service(UserManagementService, new ManagementServiceHandler(deps.useCases));
    router.service(Health, new HealthServiceHandler(deps.readiness, { watchLifetimeMs: deps.healthWatchLifetimeMs, services: ['', UserManagementService.typeName] }));
    router.service(reflectionV1Pb.ServerReflection, reflectionV1(responder));
    router.service(reflectionV1alphaPb.ServerReflection, reflectionV1alpha(responder));
  };
}
