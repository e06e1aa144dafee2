// A real OpenID provider (npm "oidc-provider") for k8sauthn's integration tests.
//
// Listens over HTTPS on 127.0.0.1 only. Configuration comes from the environment:
//   IDP_PORT       port to listen on (0 = any free port)
//   IDP_TLS_CERT   path of the server certificate (PEM, leaf first)
//   IDP_TLS_KEY    path of its private key (PEM)
//   IDP_JWKS       path of a JWKS with the *private* signing keys (the first one signs)
//   IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URI   the one static client
// When ready it prints one JSON line to stdout: {"issuer": "https://127.0.0.1:<port>"}.
// Every login name is accepted by the development interactions; the account's claims are
// derived from it so tests can predict them.
import { readFileSync } from "node:fs";
import https from "node:https";
import process from "node:process";

import Provider from "oidc-provider";

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) {
    throw new Error(`missing environment variable ${name}`);
  }
  return value;
};

const server = https.createServer({
  cert: readFileSync(env("IDP_TLS_CERT")),
  key: readFileSync(env("IDP_TLS_KEY")),
});

server.listen(Number(env("IDP_PORT")), "127.0.0.1", () => {
  const { port } = server.address();
  const issuer = `https://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: env("IDP_CLIENT_ID"),
        client_secret: env("IDP_CLIENT_SECRET"),
        redirect_uris: [env("IDP_REDIRECT_URI")],
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    jwks: JSON.parse(readFileSync(env("IDP_JWKS"), "utf8")),
    cookies: { keys: ["k8sauthn-test-cookie-key"] },
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      groups: ["groups"],
    },
    // Put the scope claims into the ID token itself (kube-apiserver only sees the ID token).
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({
        sub: id,
        email: `${id}@example.com`,
        email_verified: !id.startsWith("unverified"),
        groups: ["developers", `team-${id}`],
      }),
    }),
    ttl: { IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60 },
  });
  // The dev interactions print a warning per request; keep stderr for real failures.
  provider.on("server_error", (_ctx, err) => process.stderr.write(`${err.stack}\n`));
  server.on("request", provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
