"""Realistic Shopmonkey v3 webhook bodies, after reference/shopmonkey.md §1.6 (illustrative:
built from the documented envelope and the field names of Shopmonkey's own schemas)."""

from __future__ import annotations

import copy
from typing import Any

ORDER_ID = "6f1c2a9e-0c0b-4e0a-9f3e-2b7d1c5a8e41"
CUSTOMER_ID = "c7d1e2f3-4a5b-4c6d-8e9f-0a1b2c3d4e5f"

ORDER_INSERT: dict[str, Any] = {
    "apiVersion": "3",
    "operation": "INSERT",
    "table": "order",
    "data": {
        "id": ORDER_ID,
        "publicId": "a1b2c3d4e5",
        "number": "1042",
        "companyId": "co_5e0f",
        "locationId": "loc_77aa",
        "customerId": CUSTOMER_ID,
        "vehicleId": "veh_0001",
        "status": "Estimate",
        "workflowStatusId": "wf_01",
        "createdDate": "2026-05-01T15:04:05Z",
        "updatedDate": None,
        "orderCreatedDate": "2026-05-01T15:04:05Z",
        "totalCostCents": 0,
        "paidCostCents": 0,
        "remainingCostCents": 0,
        "laborCents": 0,
        "partsCents": 0,
        "taxCents": 0,
        "paid": False,
        "invoiced": False,
        "authorized": False,
        "archived": False,
        "deleted": False,
        "generatedCustomerName": "Jane Doe",
        "generatedVehicleName": "2019 Honda Civic",
        "meta": {"userId": "usr_1", "sessionId": "ses_1", "version": 1},
    },
}

CUSTOMER_UPDATE: dict[str, Any] = {
    "apiVersion": "3",
    "operation": "UPDATE",
    "table": "customer",
    "diff": ["lastName", "updatedDate"],
    "data": {
        "id": CUSTOMER_ID,
        "companyId": "co_5e0f",
        "locationIds": ["loc_77aa"],
        "customerType": "Customer",
        "firstName": "Jane",
        "lastName": "Smith",
        "marketingOptIn": False,
        "preferredContactMethod": "SMS",
        "createdDate": "2026-04-01T10:00:00Z",
        "updatedDate": "2026-05-02T09:30:00.250Z",
        "meta": {"version": 7},
    },
}

CUSTOMER_RECORD: dict[str, Any] = {
    **CUSTOMER_UPDATE["data"],
    "email": None,
    "phone": None,
    "emails": [
        {"id": "em_2", "email": "old.jane@example.com", "primary": False},
        {"id": "em_1", "email": "Jane.Smith@Example.com", "primary": True, "subscribed": True},
    ],
    "phoneNumbers": [
        {"id": "ph_2", "number": "+12025550100", "primary": False, "type": "Landline"},
        {"id": "ph_1", "number": "(202) 555-0123", "primary": True, "type": "Mobile"},
    ],
}


def order(operation: str = "INSERT", **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(ORDER_INSERT)
    doc["operation"] = operation
    doc["data"].update(changes)
    return doc
