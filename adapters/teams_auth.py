"""Who may talk to the bot, and how it proves itself when it answers: botbuilder's authentication.

Inbound, ``ChannelAuth.authenticate`` runs the SDK's validation of a bearer token
(``ConfigurationBotFrameworkAuthentication``, configured by the SDK's own setting names: signature
against the published keys, issuer, audience = ``MicrosoftAppId``, expiry, the key's endorsement
for the activity's channel) and then requires the token's ``serviceurl`` claim to equal the
activity's ``serviceUrl``: the SDK checks that on one of its paths only, and a valid token must
never send the bot's replies, and its outbound token, to another host. The SDK says "bad token"
with assorted exceptions (``PermissionError``, jwt's ``DecodeError`` and ``ExpiredSignatureError``,
``AttributeError`` for a missing header...); all of them mean 401, so they are caught here, once.

Outbound, the SDK makes new credentials, and so a new MSAL client with an empty token cache, for
every connector; ``_ReusedCredentials`` keeps one per app id, scope and endpoint, so the bot's
token is fetched about once an hour. The SDK fetches signing keys and tokens with blocking calls
(``requests``, MSAL) from inside the event loop: ``refresh`` does both in a thread, at start-up and
then often enough (``REFRESH_EVERY``) that the request path never has to.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import structlog
from botbuilder.integration.aiohttp import (
    ConfigurationBotFrameworkAuthentication, ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult, AuthenticationConstants, ClaimsIdentity, ConnectorFactory, GovernmentConstants,
    JwtTokenExtractor, ServiceClientCredentialsFactory,
)

from bot.config import TeamsSettings

log = structlog.get_logger(__name__)

# Keys are cached for a day and refetched inline (blocking) for an unknown key id at most hourly:
# refreshing every 20 minutes keeps both off the request path.
REFRESH_EVERY = 1200.0


class ChannelAuth:
    """The SDK's authentication for one bot, as Resync uses it."""

    def __init__(self, settings: TeamsSettings) -> None:
        self._settings = settings
        config = _sdk_configuration(settings)
        self._credentials = _ReusedCredentials(ConfigurationServiceClientCredentialFactory(config))
        self.sdk = _Authentication(config, credentials_factory=self._credentials)
        self.keys_known = False  # the signing keys were fetched at least once

    async def authenticate(self, activity: Activity, header: str) -> AuthenticateRequestResult | None:
        """The SDK's verdict on ``header`` plus the serviceUrl rule; None means 401 (logged why)."""
        if not header.startswith("Bearer ") or len(header) < 20:
            log.warning("teams_request_rejected", status=401, reason="no bearer token")
            return None
        try:
            result = await self.sdk.authenticate_request(activity, header)
        except Exception as exc:  # noqa: BLE001 - the SDK's many ways of saying "bad token": all 401
            log.warning("teams_request_rejected", status=401, reason=f"{type(exc).__name__}: {exc}"[:200])
            return None
        identity = result.claims_identity
        claimed = identity.claims.get(AuthenticationConstants.SERVICE_URL_CLAIM) if identity else None
        if identity is None or not identity.is_authenticated or claimed != activity.service_url:
            log.warning("teams_request_rejected", status=401, reason="serviceUrl does not match the token")
            return None
        return result

    def connector_factory(self) -> ConnectorFactory:
        """Connectors that authenticate as this bot (for sends outside a turn, and inside)."""
        identity = ClaimsIdentity({AuthenticationConstants.AUDIENCE_CLAIM: self._settings.app_id,
                                   AuthenticationConstants.APP_ID_CLAIM: self._settings.app_id}, True)
        return self.sdk.create_connector_factory(identity)

    async def refresh(self) -> bool:
        """Fetch the signing keys and the outbound token now, in a thread; False (and logged) when
        either failed. Keys fetched earlier stay in use."""
        metadata = JwtTokenExtractor.get_open_id_metadata(_metadata_url(self._settings))
        try:
            await asyncio.to_thread(asyncio.run, metadata._refresh())  # noqa: SLF001 - see the module docstring
            self.keys_known = True
            if self._settings.channel_service != GovernmentConstants.CHANNEL_SERVICE:
                settings = self._settings
                credentials = await self._credentials.create_credentials(
                    settings.app_id, settings.oauth_scope or AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
                    settings.login_url or AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL,
                    settings.validate_authority)
                await asyncio.to_thread(credentials.get_access_token)
        except Exception as exc:  # noqa: BLE001 - requests/MSAL errors: retried at the next refresh
            log.warning("teams_keys_refresh_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return False
        return True


class _ReusedCredentials(ServiceClientCredentialsFactory):
    """botbuilder makes new credentials (a new MSAL client, an empty token cache) for every
    connector; one per app id, scope and endpoint means the token is fetched about once an hour."""

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._made: dict[tuple[Any, ...], Any] = {}

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


class _Authentication(ConfigurationBotFrameworkAuthentication):
    """The SDK's, except that the user-token client (its own HTTP session, unused by Resync) is
    built once instead of on every turn."""

    _user_tokens: Any = None

    async def create_user_token_client(self, claims_identity: Any) -> Any:
        if self._user_tokens is None:
            self._user_tokens = await super().create_user_token_client(claims_identity)
        return self._user_tokens


def _sdk_configuration(settings: TeamsSettings) -> SimpleNamespace:
    """The SDK's configuration object (its attribute names) from Resync's settings."""
    return SimpleNamespace(
        APP_ID=settings.app_id, APP_PASSWORD=settings.app_password, APP_TYPE=settings.app_type,
        APP_TENANTID=settings.tenant_id, CHANNEL_SERVICE=settings.channel_service,
        VALIDATE_AUTHORITY=settings.validate_authority, TO_CHANNEL_FROM_BOT_LOGIN_URL=settings.login_url,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=settings.oauth_scope, TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.token_issuer,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.openid_metadata_url, OAUTH_URL=settings.oauth_url)


def _metadata_url(settings: TeamsSettings) -> str:
    if settings.openid_metadata_url:
        return settings.openid_metadata_url
    if settings.channel_service == GovernmentConstants.CHANNEL_SERVICE:
        return GovernmentConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
    return AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL
