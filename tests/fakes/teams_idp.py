"""A loopback identity provider for the Bot Framework: OpenID metadata, JWKS with endorsements,
a token endpoint, and the RS256 tokens Teams would send.

    with FakeIdentityProvider() as idp:
        env = idp.settings(app_id)      # the SDK's own keys: ToBotFromChannelOpenIdMetadataUrl, ...
        token = idp.channel_token(app_id, service_url)         # what Teams puts in Authorization
        idp.channel_token(app_id, url, expires_in=-600)        # expired (beyond the 5 min leeway)
        idp.channel_token(app_id, url, key="rogue")            # signed with a key not published
        idp.channel_token(app_id, url, key="webchat")          # a published key not endorsed for msteams

It runs in its own thread with a blocking HTTP server because botbuilder fetches the metadata and
keys with blocking ``requests.get`` from inside the event loop: a server on that same loop would
never answer. Keys:

    main      published, endorsements ["msteams"]          signs every good token
    webchat   published, endorsements ["webchat"]          "missing endorsement"
    rogue     NOT published, header kid "main"             "wrong key" (signature fails)

Routes: ``GET /.well-known/openid-configuration`` and ``GET /keys`` (channel metadata and JWKS),
``POST /token`` (client credentials: ``client_id``/``client_secret`` checked, RS256 access token
with ``aud`` = the requested scope), and for MSAL, which accepts only https authorities it knows or
ADFS ones, the same under ``/adfs`` (``/adfs/.well-known/openid-configuration``,
``/adfs/oauth2/token``). ``tls=True`` serves https with a self-signed certificate written to
``cert_path`` (point ``REQUESTS_CA_BUNDLE`` at it). ``hits`` counts requests per path.
"""

from __future__ import annotations

import datetime
import json
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

CONNECTOR_SCOPE = "https://api.botframework.com"  # the audience of the bot's outbound tokens


class FakeIdentityProvider:
    """See the module docstring."""

    def __init__(self, *, tls: bool = False, clients: dict[str, str] | None = None) -> None:
        self.keys = {name: rsa.generate_private_key(public_exponent=65537, key_size=2048)
                     for name in ("main", "webchat", "rogue")}
        self.clients = dict(clients or {})  # client_id -> secret accepted at the token endpoint
        self.hits: Counter[str] = Counter()
        self.tokens_issued = 0
        self._tls = tls
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.cert_path: Path | None = None
        if tls:
            self.cert_path = self._certificate()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.cert_path, self._key_path)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        host, port = self._server.server_address[:2]
        self.url = f"{'https' if tls else 'http'}://{host}:{port}"
        self.issuer = self.url + "/"  # the channel tokens' "iss" (ToBotFromChannelTokenIssuer)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-idp", daemon=True)

    # --- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> FakeIdentityProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    async def __aenter__(self) -> FakeIdentityProvider:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    # --- what the bot is configured with -----------------------------------------------------
    @property
    def metadata_url(self) -> str:
        return self.url + "/.well-known/openid-configuration"

    @property
    def login_url(self) -> str:
        """An authority MSAL accepts without asking Microsoft's instance discovery (ADFS)."""
        return self.url + "/adfs"

    def settings(self, app_id: str, password: str | None = None) -> dict[str, str]:
        """The SDK's own configuration keys, pointing inbound validation (and login) here."""
        env = {"MicrosoftAppId": app_id, "ToBotFromChannelOpenIdMetadataUrl": self.metadata_url,
               "ToBotFromChannelTokenIssuer": self.issuer, "ToChannelFromBotLoginUrl": self.login_url,
               "ToChannelFromBotOAuthScope": CONNECTOR_SCOPE, "ValidateAuthority": "false"}
        if password is not None:
            env["MicrosoftAppPassword"] = password
        return env

    # --- tokens ---------------------------------------------------------------------------
    def channel_token(self, app_id: str, service_url: str | None, *, key: str = "main", expires_in: float = 3600,
                      issuer: str | None = None, audience: str | None = None, **claims: Any) -> str:
        """A token as the Bot Connector service signs it for an inbound activity."""
        now = int(time.time())
        payload: dict[str, Any] = {"iss": issuer or self.issuer, "aud": audience or app_id, "nbf": now - 60,
                                   "iat": now - 60, "exp": int(now + expires_in), **claims}
        if service_url is not None:
            payload["serviceurl"] = service_url
        return self._sign(payload, key)

    def access_token(self, client_id: str, scope: str = CONNECTOR_SCOPE) -> str:
        """The bot's outbound token, as the token endpoint issues it (client credentials)."""
        now = int(time.time())
        self.tokens_issued += 1
        return self._sign({"iss": self.url + "/adfs", "aud": scope.removesuffix("/.default"), "appid": client_id,
                           "iat": now, "nbf": now, "exp": now + 3600, "jti": uuid.uuid4().hex}, "main")

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of an outbound token this provider issued; raises jwt errors otherwise."""
        return jwt.decode(token, self.keys["main"].public_key(), algorithms=["RS256"], audience=CONNECTOR_SCOPE)

    def _sign(self, payload: dict[str, Any], key: str) -> str:
        kid = "main" if key == "rogue" else key  # a forged token claims the published key's id
        return jwt.encode(payload, self.keys[key], algorithm="RS256", headers={"kid": kid})

    # --- documents ------------------------------------------------------------------------
    def _jwks(self) -> dict[str, Any]:
        keys = []
        for name, endorsements in (("main", ["msteams"]), ("webchat", ["webchat"])):
            jwk = json.loads(RSAAlgorithm.to_jwk(self.keys[name].public_key()))
            keys.append({**jwk, "kid": name, "use": "sig", "kty": "RSA", "endorsements": endorsements})
        return {"keys": keys}

    def _channel_metadata(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": self.url + "/keys", "token_endpoint": self.url + "/token",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"]}

    def _adfs_metadata(self) -> dict[str, Any]:
        return {"issuer": self.url + "/adfs", "authorization_endpoint": self.url + "/adfs/oauth2/authorize",
                "token_endpoint": self.url + "/adfs/oauth2/token", "jwks_uri": self.url + "/keys",
                "response_types_supported": ["code", "token"], "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        if client not in self.clients or self.clients[client] != secret:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
        scope = form.get("scope", CONNECTOR_SCOPE + "/.default").split()[0]
        return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                     "access_token": self.access_token(client, scope)}

    def _certificate(self) -> Path:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        folder = Path(tempfile.mkdtemp(prefix="fake-idp-"))
        (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._key_path = folder / "key.pem"
        self._key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
        return folder / "cert.pem"


def _handler(idp: FakeIdentityProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            idp.hits[path] += 1
            documents = {"/.well-known/openid-configuration": idp._channel_metadata, "/keys": idp._jwks,
                         "/adfs/.well-known/openid-configuration": idp._adfs_metadata}
            if path in documents:
                self._answer(200, documents[path]())
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            idp.hits[path] += 1
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if path in ("/token", "/adfs/oauth2/token"):
                self._answer(*idp._token(form))
            else:
                self._answer(404, {"error": "not_found"})

    return Handler
