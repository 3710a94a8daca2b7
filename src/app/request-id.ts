/**
 * `x-request-id`: a client's (or a balancer's) id is echoed when it is a sane token, else one is
 * generated; either way it is on the response and in the request's log line.
 * @module
 */

const SANE = /^[\x21-\x7e]{1,128}$/;

export function requestIdOf(header: string | null): string {
  return header !== null && SANE.test(header) ? header : crypto.randomUUID();
}

/** The response with one more header; a response with immutable headers (e.g. from fetch()) is copied. */
export function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const headers = new Headers(response.headers);
    headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }
}
