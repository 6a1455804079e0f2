"""`OrderServices` over the Shopmonkey client: an order's services with its company's key, paced
and retried as the client is (the poller's and the backfill's client; never the webhook path)."""

from __future__ import annotations

from typing import Any

from services.ingest.adapters.shopmonkey_client import Retries, ShopmonkeyClient
from services.ingest.domain.model import IngestCompany


class ShopmonkeyOrderServices:
    def __init__(self, client: ShopmonkeyClient, *, retry: Retries | None = None) -> None:
        self._client = client
        self._retry = retry

    async def services(self, company: IngestCompany, order_id: str) -> list[dict[str, Any]] | None:
        api_key = company.shopmonkey_api_key
        if not api_key:
            return None
        return await self._client.get_order_services(api_key, order_id, retry=self._retry)
