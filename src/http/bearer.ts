// `Authorization: Bearer <token>`, read the same way for API keys and the metrics token:
// the scheme in any case, one or more spaces before the token (RFC 9110 §11.4, RFC 6750).
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer +(\S+)$/i.exec(header ?? '')?.[1];
}
