import { Type } from "typebox";
import type { ApiError } from "../../errors.ts";

/**
 * Graph error codes (integers, as Meta's clients expect): 190 for an
 * unusable key, 4 for throttling, 2500 for an unknown path, 1 and 2 for
 * failures on our side, 100 ("invalid parameter") for every other client error.
 */
function graphCode(error: ApiError): number {
  if (error.status === 401) return 190;
  if (error.status === 429) return 4;
  if (error.code === "route_not_found") return 2500;
  if (error.status === 503) return 2;
  if (error.status >= 500) return 1;
  return 100;
}

function graphType(error: ApiError): string {
  if (error.code === "resource_not_found") return "GraphMethodException";
  return "OAuthException";
}

/** The graph surface's error shape (spec §5); `fbtrace_id` is the request id. */
export function renderGraphError(error: ApiError, requestId: string) {
  return {
    error: {
      message: error.message,
      type: graphType(error),
      code: graphCode(error),
      fbtrace_id: requestId,
    },
  };
}

export const GraphErrorBody = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String(),
      code: Type.Integer(),
      fbtrace_id: Type.String(),
    }),
  },
  { title: "Graph error" },
);

export const GRAPH_ERROR_RESPONSES = {
  400: GraphErrorBody,
  401: GraphErrorBody,
  404: GraphErrorBody,
  405: GraphErrorBody,
  409: GraphErrorBody,
  413: GraphErrorBody,
  415: GraphErrorBody,
  422: GraphErrorBody,
  429: GraphErrorBody,
  500: GraphErrorBody,
  503: GraphErrorBody,
} as const;
