"""The bare botbuilder app that bench/teams.py measures Resync against: the same job, nothing more.

    python bench/bare_botbuilder.py --port PORT --tws URL [--reuse none|credentials|clients]
    # env: the SDK's settings (MicrosoftAppId, MicrosoftAppPassword, ToBotFromChannel..., ...), TWS_USER/PASSWORD

botbuilder's own template (``generators/app/templates/echo/app.py`` in microsoft/botbuilder-python):
``CloudAdapter(ConfigurationBotFrameworkAuthentication(CONFIG))`` with ``CONFIG`` the template's
``DefaultConfig`` attributes read from the SDK's setting names, an ``ActivityHandler``, and an
aiohttp route ``POST /api/messages`` calling ``process_activity`` with the Authorization header,
so every request's RS256 token is validated by the SDK (keys fetched once, then cached).

Ack then answer, as Resync does: the turn keeps the conversation reference and starts the answer;
the HTTP 200 goes out when the turn returns. The answer is ``status <job>``'s single TWS query
(``GET /api/v2/plan/job?oql=name = 'X'``, Basic auth, one pooled aiohttp session) rendered as one
Adaptive Card, or ``help``'s static text, sent with ``adapter.continue_conversation``: the SDK's
way to send outside a turn (sample 16.proactive-messages). No deduplication, permission policy,
pacing, retries or typing indicator.

What the SDK makes per reply (``--reuse``):

* ``none`` (the default, and what the template does): botbuilder's own behaviour, not a bench
  mistake. ``CloudAdapterBase`` asks its connector factory for a new ``ConnectorClient`` and
  builds a new ``UserTokenClient`` on every turn and every ``continue_conversation``: four msrest
  clients per answered message, each with a ``Configuration`` whose retry policy alone builds
  its status list by a 999 x 500 list scan. The connector factory asks
  ``PasswordServiceClientCredentialFactory.create_credentials``, which returns a new
  ``MicrosoftAppCredentials`` each time, whose MSAL ``ConfidentialClientApplication`` (and so its
  token cache) is built on first use: each reply builds an MSAL client (authority metadata
  fetched) and fetches a token, both with blocking ``requests`` calls on the event loop.
  ``AppCredentials.cache`` is a leftover nothing reads; only the legacy ``BotFrameworkAdapter``
  keeps credentials (``_app_credential_map``) and connectors (``_connector_client_cache``).
  Checked in botbuilder 4.17.1 and upstream's main branch (the same files).
* ``credentials``: the SDK's documented seam ``ConfigurationBotFrameworkAuthentication(...,
  credentials_factory=...)`` handed a factory that makes one credentials object per app id,
  scope and endpoint, so the token is fetched once an hour; clients still made per turn.
* ``clients``: that, plus one ``ConnectorClient`` per serviceUrl and audience and one
  ``UserTokenClient``, made once (``ReusedClients``): what Resync's Teams adapter does with the
  SDK. The leanest botbuilder app, the floor of what Resync adds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import sys
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import ActivityHandler, CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter, ConfigurationBotFrameworkAuthentication, ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import ConnectorFactory, ServiceClientCredentialsFactory

HELP = ("**Resync** answers questions about TWS jobs:\n\n- `status JOB`\n- `log JOB`\n- `failures`\n"
        "- `rerun JOB` (asks for confirmation)")
_STATUS = re.compile(r"status\s+(\S+)", re.I)


def configuration(env: dict[str, str]) -> SimpleNamespace:
    """The template's ``DefaultConfig``, plus the SDK's endpoint settings (here: the loopback Teams)."""
    return SimpleNamespace(
        APP_ID=env.get("MicrosoftAppId", ""), APP_PASSWORD=env.get("MicrosoftAppPassword", ""),
        APP_TYPE=env.get("MicrosoftAppType", "MultiTenant"), APP_TENANTID=env.get("MicrosoftAppTenantId", ""),
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=env.get("ToBotFromChannelOpenIdMetadataUrl"),
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=env.get("ToBotFromChannelTokenIssuer"),
        TO_CHANNEL_FROM_BOT_LOGIN_URL=env.get("ToChannelFromBotLoginUrl"),
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=env.get("ToChannelFromBotOAuthScope"),
        VALIDATE_AUTHORITY=env.get("ValidateAuthority", "true").lower() != "false")


class ReusedCredentials(ServiceClientCredentialsFactory):
    """One credentials object (one MSAL client and token cache) per app id, scope and endpoint."""

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner, self._made = inner, {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return await self._inner.is_valid_app_id(app_id)

    async def is_authentication_disabled(self) -> bool:
        return await self._inner.is_authentication_disabled()

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> Any:
        key = (app_id, oauth_scope, login_endpoint, validate_authority)
        if key not in self._made:
            self._made[key] = await self._inner.create_credentials(*key)
        return self._made[key]


class ReusedClients(ConfigurationBotFrameworkAuthentication):
    """The SDK's authentication, handing out one connector per serviceUrl and audience and one
    user-token client instead of new ones on every turn."""

    def __init__(self, configuration: Any, **kwargs: Any) -> None:
        super().__init__(configuration, **kwargs)
        self._connectors: dict[tuple[str, str | None], Any] = {}
        self._user_tokens: Any = None

    async def authenticate_request(self, activity: Activity, auth_header: str) -> Any:
        result = await super().authenticate_request(activity, auth_header)
        result.connector_factory = self._reusing(result.connector_factory)
        return result

    def create_connector_factory(self, claims_identity: Any) -> ConnectorFactory:
        return self._reusing(super().create_connector_factory(claims_identity))

    async def create_user_token_client(self, claims_identity: Any) -> Any:
        if self._user_tokens is None:
            self._user_tokens = await super().create_user_token_client(claims_identity)
        return self._user_tokens

    def _reusing(self, inner: ConnectorFactory) -> ConnectorFactory:
        connectors = self._connectors

        class Reusing(ConnectorFactory):
            async def create(self, service_url: str, audience: str | None = None) -> Any:
                if (service_url, audience) not in connectors:
                    connectors[service_url, audience] = await inner.create(service_url, audience)
                return connectors[service_url, audience]

        return Reusing()


class StatusBot(ActivityHandler):
    """``status <job>`` and ``help``, answered after the turn through ``continue_conversation``."""

    def __init__(self, adapter: CloudAdapter, app_id: str, tws: str, user: str, password: str) -> None:
        self._adapter, self._app_id, self._tws = adapter, app_id, tws
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = TurnContext.remove_recipient_mention(turn_context.activity) or ""
        reference = TurnContext.get_conversation_reference(turn_context.activity)
        task = asyncio.ensure_future(self._answer(reference, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, reference: Any, text: str) -> None:
        found = _STATUS.search(text)
        reply = await self._status(found[1]) if found else MessageFactory.text(HELP)
        await self._adapter.continue_conversation(reference, lambda turn: turn.send_activity(reply), self._app_id)

    async def _status(self, name: str) -> Activity:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.get(f"{self._tws}/api/v2/plan/job",
                                     headers={"Authorization": self._auth, "Accept": "application/json"},
                                     params={"oql": f"name = '{name}'", "limit": "50", "offset": "0"}) as response:
            jobs = (await response.json())["results"]
        if not jobs:
            return MessageFactory.text(f"I can't find a job called `{name}`.")
        job = jobs[0]
        full = f"{job['workstation']}#{job['jobStreamName']}.{job['name']}"
        facts = [{"title": k, "value": str(v)} for k, v in (("Status", job.get("status")),
                                                             ("Return code", job.get("returnCode")),
                                                             ("Job stream", job["jobStreamName"]))]
        card = {"type": "AdaptiveCard", "version": "1.5", "body": [
            {"type": "TextBlock", "text": f"**{full}** is {job.get('status')}", "wrap": True},
            {"type": "FactSet", "facts": facts}]}
        return MessageFactory.attachment(CardFactory.adaptive_card(card), text=f"{full}: {job.get('status')}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def build(tws: str, env: dict[str, str], reuse: str = "none") -> web.Application:
    config = configuration(env)
    factory = ReusedCredentials(ConfigurationServiceClientCredentialFactory(config)) if reuse != "none" else None
    authentication = ReusedClients if reuse == "clients" else ConfigurationBotFrameworkAuthentication
    adapter = CloudAdapter(authentication(config, credentials_factory=factory))
    bot = StatusBot(adapter, config.APP_ID, tws, env["TWS_USER"], env["TWS_PASSWORD"])

    async def messages(request: web.Request) -> web.Response:
        if "application/json" not in request.headers.get("Content-Type", ""):
            return web.Response(status=415)
        activity = Activity().deserialize(await request.json())
        response = await adapter.process_activity(request.headers.get("Authorization", ""), activity, bot.on_turn)
        if response:
            return web.json_response(data=response.body, status=response.status)
        return web.Response(status=200)

    async def closing(_app: web.Application) -> None:
        await bot.close()

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    app.router.add_get("/healthz", _ok)
    app.on_cleanup.append(closing)
    return app


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tws", required=True)
    parser.add_argument("--reuse", choices=("none", "credentials", "clients"), default="none")
    args = parser.parse_args()
    web.run_app(build(args.tws, dict(os.environ), args.reuse), host="127.0.0.1", port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    sys.exit(main())
