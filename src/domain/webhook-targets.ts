import { lookup } from "node:dns/promises";
import ipaddr from "ipaddr.js";
import { ApiError } from "../errors.ts";

/** What the operator allows as a webhook target (WEBHOOKS_ALLOW_HTTP, WEBHOOKS_ALLOW_PRIVATE). */
export interface TargetPolicy {
  allowHttp: boolean;
  allowPrivate: boolean;
}

export const URL_MAX = 2048;

/**
 * Whether an address is one a webhook must not reach: anything but public
 * unicast (loopback, private, carrier-grade NAT, link-local, which holds the
 * cloud metadata address 169.254.169.254, unique-local IPv6, multicast,
 * reserved, unspecified); IPv4-mapped IPv6 is judged by the IPv4 address inside; translated (NAT64, 6to4, Teredo) IPv6
 * addresses are refused too (they can reach private IPv4 space).
 */
export function isForbiddenAddress(address: string): boolean {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/^\[|\]$/g, ""));
  } catch {
    return true;
  }
  if (parsed.kind() === "ipv6") {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return isForbiddenAddress(v6.toIPv4Address().toString());
  }
  return parsed.range() !== "unicast";
}

function invalidUrl(message: string): ApiError {
  return new ApiError("invalid_field_value", message, { param: "url" });
}

/**
 * Checks a webhook URL at creation (and update): absolute http(s), no
 * credentials, https unless allowed, and a host that resolves only to public
 * addresses unless private targets are allowed. Delivery checks the resolved
 * address again (DNS may change).
 */
export async function validateTargetUrl(raw: string, policy: TargetPolicy): Promise<string> {
  if (raw.length > URL_MAX) throw invalidUrl(`url must be at most ${URL_MAX} characters.`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl("url must be an absolute URL such as https://example.com/webhooks.");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && policy.allowHttp)) {
    throw invalidUrl(
      policy.allowHttp ? "url must start with https:// or http://." : "url must start with https://.",
    );
  }
  if (url.username !== "" || url.password !== "") throw invalidUrl("url must not contain credentials.");
  if (url.hash !== "") throw invalidUrl("url must not contain a fragment.");
  if (!policy.allowPrivate) await requirePublicHost(url.hostname);
  return url.toString();
}

async function requirePublicHost(hostname: string): Promise<void> {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (ipaddr.isValid(host)) {
    if (isForbiddenAddress(host))
      throw invalidUrl("url must not point to a private, loopback or link-local address.");
    return;
  }
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".internal")) {
    throw invalidUrl("url must not point to a private, loopback or link-local address.");
  }
  let addresses: Array<{ address: string }>;
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch {
    throw invalidUrl(`url's host ${host} does not resolve.`);
  }
  if (addresses.length === 0 || addresses.some((a) => isForbiddenAddress(a.address))) {
    throw invalidUrl("url must not point to a private, loopback or link-local address.");
  }
}
