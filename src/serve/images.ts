/**
 * Image URLs of a request → encoded image bytes. `data:` URLs are always accepted; http(s) only when the
 * server allows remote images, and then never towards loopback, link-local, private or otherwise special
 * addresses, with a size and a time limit. Anything else (file:, ftp:, …) is refused.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { RequestError } from './openai.js';

export interface ImagePolicy {
  allowRemote: boolean;
  /** Most bytes one encoded image may have. */
  maxBytes: number;
  /** How long fetching a remote image may take, all included. */
  fetchTimeoutMs: number;
}

const schemeOf = (url: string) => /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();

/** Whether the policy lets this URL be fetched from the network. */
export function isFetched(url: string, policy: ImagePolicy): boolean {
  const scheme = schemeOf(url);
  return policy.allowRemote && (scheme === 'http' || scheme === 'https');
}

export async function imageBytes(url: string, index: number, policy: ImagePolicy): Promise<Uint8Array> {
  const param = `image ${index + 1}`;
  const scheme = schemeOf(url);
  if (scheme === 'data') return dataUrlBytes(url, param, policy.maxBytes);
  if (isFetched(url, policy)) return fetchImage(url, param, policy);
  const why = scheme === 'http' || scheme === 'https'
    ? 'remote image URLs are refused (start the server with --allow-remote-images to allow http and https)'
    : `${scheme ? `'${scheme}:' URLs are` : 'this URL is'} not accepted; send the image as a data: URL (data:image/png;base64,...)`;
  throw new RequestError(`${param}: ${why}`, 400, 'messages', 'invalid_image_url');
}

function tooLarge(param: string, size: number, maxBytes: number): RequestError {
  return new RequestError(`${param}: ${size} bytes, above the image size limit of ${maxBytes} bytes`, 400, 'messages', 'image_too_large');
}

/** `data:[<mediatype>][;base64],<data>`; the format is sniffed from the bytes later, whatever the media type says. */
function dataUrlBytes(url: string, param: string, maxBytes: number): Uint8Array {
  const comma = url.indexOf(',');
  const meta = comma < 0 ? '' : url.slice(5, comma);
  if (comma < 0 || !/;base64$/i.test(meta)) {
    throw new RequestError(`${param}: a data: URL must be base64-encoded (data:image/png;base64,...)`, 400, 'messages', 'invalid_image_url');
  }
  const payload = url.slice(comma + 1).replace(/\s+/g, '');
  // Checked before decoding: base64 carries 3 bytes per 4 characters.
  const size = Math.floor((payload.length * 3) / 4) - (payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0);
  if (size > maxBytes) throw tooLarge(param, size, maxBytes);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(payload)) throw new RequestError(`${param}: the data: URL is not valid base64`, 400, 'messages', 'invalid_image_url');
  return Buffer.from(payload, 'base64');
}

/** Addresses a server must not be made to reach on a client's behalf. */
const FORBIDDEN = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 3],
] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 127], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['2001:db8::', 32], ['64:ff9b::', 96]] as const) {
  FORBIDDEN.addSubnet(net, prefix, 'ipv6');
}

export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1]; // IPv4-mapped IPv6 is its IPv4 address
  if (mapped) return FORBIDDEN.check(mapped, 'ipv4');
  return FORBIDDEN.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The connection's own name resolution, checked: the address connected to is the one vetted (no second lookup
 * a rebinding DNS server could answer differently).
 */
function vettedLookup(hostname: string, options: object, callback: (err: Error | null, address: string | LookupAddress[], family?: number) => void): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    if (addresses.length === 0) return callback(new Error(`${hostname} has no address`), []);
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad) return callback(new Error(`${hostname} resolves to ${bad.address}, a loopback, private or reserved address`), []);
    if ((options as { all?: boolean }).all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

function fetchImage(url: string, param: string, policy: ImagePolicy): Promise<Uint8Array> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RequestError(`${param}: not a valid URL`, 400, 'messages', 'invalid_image_url');
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  // Literal addresses are connected to without a lookup, so they are checked here.
  if (isIP(host) && isForbiddenAddress(host)) {
    return Promise.reject(new RequestError(`${param}: ${host} is a loopback, private or reserved address`, 400, 'messages', 'invalid_image_url'));
  }
  return new Promise((resolve, reject) => {
    const refuse = (why: string) => reject(new RequestError(`${param}: cannot fetch ${parsed.origin}: ${why}`, 400, 'messages', 'invalid_image_url'));
    const get = parsed.protocol === 'https:' ? httpsGet : httpGet;
    const request = get(parsed, { lookup: vettedLookup as never, timeout: policy.fetchTimeoutMs, headers: { accept: 'image/*' } }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        return refuse(`HTTP ${res.statusCode} (redirects are not followed)`);
      }
      const declared = Number(res.headers['content-length']);
      if (declared > policy.maxBytes) {
        request.destroy();
        return reject(tooLarge(param, declared, policy.maxBytes));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > policy.maxBytes) {
          request.destroy();
          reject(tooLarge(param, size, policy.maxBytes));
        } else chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', (err) => refuse(err.message));
    });
    const timer = setTimeout(() => request.destroy(new Error(`no complete answer within ${policy.fetchTimeoutMs} ms`)), policy.fetchTimeoutMs);
    request.on('close', () => clearTimeout(timer));
    request.on('timeout', () => request.destroy(new Error(`no answer within ${policy.fetchTimeoutMs} ms`)));
    request.on('error', (err) => refuse(err.message));
  });
}
