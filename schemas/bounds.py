"""The longest text each contract field may hold (DESIGN §11: contract lengths = column lengths).

A field that lands in a PostgreSQL column has that column's length (tests/unit/schemas checks
every pair against `services/common/db/models.py`); a field with no column of its own has a
bound chosen here. Producers cut or refuse at the edge (ingest), so a record on a topic never
holds what a column cannot take; a consumer refuses a longer one as a contract error (DLQ).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

#: Shopmonkey record ids: `leads.shopmonkey_order_id`, `leads.customer_id`.
RECORD_ID = 100
#: `leads.order_number` (Shopmonkey's order number, a display value).
ORDER_NUMBER = 50
#: `leads.first_name`, `leads.last_name`.
NAME = 200
#: `leads.email`, `job_executions.recipient`, `suppressions.contact` (RFC 5321 allows 254).
EMAIL = 320
#: `leads.phone` (E.164 needs 16).
PHONE = 32
#: `leads.vehicle`.
VEHICLE = 200
#: One service name of an order (`leads.services` holds the list as JSONB).
SERVICE = 200
#: Services of one order (more are cut at the edge).
SERVICES = 100
#: Shopmonkey's order status word ("Estimate", "RepairOrder", "Invoice"; no column).
ORDER_STATUS = 50
#: A website form's service of interest (no column; the form's own limit).
SERVICE_OF_INTEREST = 200
#: `job_executions.template`.
TEMPLATE = 100
#: `job_executions.provider_message_id`.
PROVIDER_MESSAGE_ID = 100
#: A decision's reason (`job_executions.reason` is TEXT: the bound is ours).
DECISION_REASON = 500
#: Event ids: `provider_events.event_key` (an OrderEvent's id has no column: the same bound).
EVENT_ID = 300
#: `suppressions.source`.
SIGNAL_SOURCE = 50
#: `job_executions.delivery_error` (a signal's detail is stored there).
SIGNAL_DETAIL = 200
#: A campaign run's key on commands and outcomes ("appointment:<id>@<epoch>"; no column of
#: its own: `job_executions.campaign` has this length).
CAMPAIGN_RUN = 160
#: Money in cents (an order's, a service's): PostgreSQL's bigint.
MAX_CENTS = 2**63 - 1
#: Why a lead was lost or changed (`leads.lost_reason` is TEXT: the bound is ours).
LEAD_REASON = 200

RecordId = Annotated[str, Field(max_length=RECORD_ID)]
Name = Annotated[str, Field(max_length=NAME)]
Email = Annotated[str, Field(max_length=EMAIL)]
Phone = Annotated[str, Field(max_length=PHONE)]
ServiceName = Annotated[str, Field(max_length=SERVICE)]
