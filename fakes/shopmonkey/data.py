"""The simulated Shopmonkey accounts: companies with one or more locations, their customers and
orders, shaped like the v3 records of reference/shopmonkey.md §1.6, §2.4, §2.5, §3.
Deterministic for a seed. Every change bumps `meta.version` and `updatedDate`, like the real
rows.

As in Shopmonkey, the API key and the webhook secret belong to the company, customers are
company-level (`locationIds[]`: the locations they have orders at) and every order carries its
`companyId` and `locationId`. Each location is one tenant of ours (`tenant_id`).

Campaign records (reference §5) come from a generator of their own (`World.campaign_rng`), so
the records above stay what they were for a seed: each order's services (not nested in the
order unless `embed_services`: `GET /v3/order/:id/service` serves them) with their
`authorizationStatus` (decided when the order is authorized, some Declined), `deferredReason`
/ `excludedFromDeferred` (set when it is invoiced), `revivedFromId` on a later order of the
customer that brings a deferred one back, and `totalCents` (the order's total split); and
appointments of orders (`startDate`, `endDate`, `sendReminder`, `cancelationNote`).
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SIM_NAMESPACE = uuid.UUID("2f6f1d1e-7d1c-4a57-9a3e-5c0b8c1d2e3f")
FIRST = ["Jane", "John", "Maria", "Wei", "Aisha", "Carlos", "Olga", "Sam", "Priya", "Tom"]
LAST = ["Doe", "Smith", "Garcia", "Chen", "Khan", "Lopez", "Ivanova", "Lee", "Patel", "Brown"]
VEHICLES = ["2019 Honda Civic", "2017 Ford F-150", "2021 Tesla Model 3", "2015 Toyota Camry"]
SERVICES = ["Window tint", "Paint protection film", "Ceramic coating", "Windshield repair"]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Area codes of real US/Canadian regions: with 555-0100..0199 (reserved for fiction) each gives
#: numbers that are valid to libphonenumber yet belong to nobody.
#: The consent changes `World.update_customer` takes (besides `email` and `phone`).
CONSENT_CHANGES = (
    "smsOptIn",
    "phoneType",
    "emailSubscribed",
    "marketingOptIn",
    "preferredContactMethod",
)
AREA_CODES = (202, 212, 305, 312, 415, 512, 617, 702, 713, 206, 416, 604)


def fictional_phone(rng: random.Random) -> str:
    """A valid (E.164) number in the NANP range reserved for fiction: +1 NPA 555-01xx."""
    return f"+1{rng.choice(AREA_CODES)}55501{rng.randrange(100):02d}"


@dataclass
class Location:
    """One location of a simulated company = one tenant (location) of ours."""

    tenant_id: uuid.UUID
    location_id: str
    name: str
    company: Company = field(repr=False, compare=False)

    def public(self) -> dict[str, Any]:
        return {
            "tenant_id": str(self.tenant_id),
            "location_id": self.location_id,
            "name": self.name,
            "orders": sum(
                1 for o in self.company.orders.values() if o["locationId"] == self.location_id
            ),
        }


@dataclass
class Company:
    """One simulated Shopmonkey company: API key, webhook secret, customers, orders and its
    locations. `tenant_id`, `location_id` and `name` are its first location's (a
    single-location company's only one)."""

    company_id: str
    company_name: str
    api_key: str
    webhook_secret: str
    signature_scheme: str = "standard"
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    locations: list[Location] = field(default_factory=list)
    #: each order's services, by order id (`GET /v3/order/:id/service`)
    services: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    appointments: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.locations[0].tenant_id

    @property
    def location_id(self) -> str:
        return self.locations[0].location_id

    @property
    def name(self) -> str:
        return self.locations[0].name

    def location(self, key: uuid.UUID | str) -> Location:
        """A location by its tenant id or its Shopmonkey location id."""
        for location in self.locations:
            if str(location.tenant_id) == str(key) or location.location_id == key:
                return location
        raise KeyError(f"no location {key} in company {self.company_id}")

    def public(self) -> dict[str, Any]:
        first = self.locations[0]
        return {
            "tenant_id": str(first.tenant_id),
            "company_id": self.company_id,
            "company_name": self.company_name,
            "location_id": first.location_id,
            "name": first.name,
            "api_key": self.api_key,
            "webhook_secret": self.webhook_secret,
            "signature_scheme": self.signature_scheme,
            "customers": len(self.customers),
            "orders": len(self.orders),
            "locations": [location.public() for location in self.locations],
        }


class World:
    """All companies of the simulator and the operations that change their records."""

    def __init__(
        self,
        *,
        seed: int = 1,
        tenants: int = 1,
        layout: tuple[int, ...] | None = None,
        demo_emails: tuple[str, ...] = (),
        demo_phone: str | None = None,
        null_updated_on_insert: bool = True,
        clock: Callable[[], datetime] | None = None,
        run_seed: int | None = None,
        embed_services: bool = False,
    ) -> None:
        """`layout`: the number of locations of each company (default: `tenants` companies of
        one location each); `run_seed`: customers and orders of their own (the companies,
        locations and secrets stay those of `seed`), so a second demo run is not a replay;
        `embed_services`: orders carry their `services` (the real API does not nest them)."""
        self.rng = random.Random(seed)
        self.campaign_rng = random.Random(f"{seed}:campaigns")
        self.embed_services = embed_services
        #: deferred services already brought back on a later order
        self._revived: set[str] = set()
        #: each customer's deferred services (not excluded), in the order they were deferred
        self._deferred: dict[str, list[dict[str, Any]]] = {}
        self.seed = seed
        self.demo_emails = demo_emails
        #: the phone of every customer given a demo email (a demo lists it for SMS)
        self.demo_phone = demo_phone
        self.null_updated_on_insert = null_updated_on_insert
        self.clock = clock or (lambda: datetime.now(UTC))
        self.companies: list[Company] = []
        self.by_key: dict[str, Company] = {}
        self._last = datetime.min.replace(tzinfo=UTC)
        for index, count in enumerate(layout or (1,) * tenants):
            self.add_company(index, locations=count)
        if run_seed is not None:
            self.rng = random.Random(f"{seed}/{run_seed}")
            self.campaign_rng = random.Random(f"{seed}/{run_seed}:campaigns")

    # ids and time ---------------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _campaign_uuid(self) -> str:
        return str(uuid.UUID(int=self.campaign_rng.getrandbits(128), version=4))

    def now(self) -> datetime:
        """Strictly increasing millisecond timestamps (like row updates on one database)."""
        now = self.clock()
        moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if moment <= self._last:
            moment = self._last + timedelta(milliseconds=1)
        self._last = moment
        return moment

    @property
    def locations(self) -> list[Location]:
        return [location for company in self.companies for location in company.locations]

    def add_company(
        self, index: int, *, signature_scheme: str = "standard", locations: int = 1
    ) -> Company:
        """Company `index` with its locations: the first location's ids are those a
        single-location company of that index always had (same seed, same ids); the others
        come from a generator of their own, so they change none of the other companies'."""
        secret = base64.b64encode(self.rng.randbytes(32)).decode()
        company_id = f"co_{self.rng.getrandbits(48):012x}"
        first_location = f"loc_{self.rng.getrandbits(48):012x}"
        company = Company(
            company_id=company_id,
            company_name=f"Simulated company {index + 1}",
            api_key=f"smk_{self.rng.getrandbits(128):032x}",
            webhook_secret=(
                "whsec_" + secret if signature_scheme == "standard" else f"legacy_{secret}"
            ),
            signature_scheme=signature_scheme,
        )
        extra = random.Random(f"{self.seed}:{index}:locations")
        for n in range(max(1, locations)):
            suffix = "" if n == 0 else f":{n}"
            company.locations.append(
                Location(
                    tenant_id=uuid.uuid5(SIM_NAMESPACE, f"{self.seed}:{index}{suffix}"),
                    location_id=first_location if n == 0 else f"loc_{extra.getrandbits(48):012x}",
                    name=f"Simulated location {index + 1}"
                    + ("" if n == 0 else f"{chr(ord('a') + n)}"),
                    company=company,
                )
            )
        self.companies.append(company)
        self.by_key[company.api_key] = company
        return company

    def company(self, tenant_id: uuid.UUID | str) -> Company:
        """The company of the location (tenant) `tenant_id`."""
        return self.location(tenant_id).company

    def location(self, tenant_id: uuid.UUID | str) -> Location:
        for location in self.locations:
            if str(location.tenant_id) == str(tenant_id):
                return location
        raise KeyError(f"no simulated location for tenant {tenant_id}")

    # customers ------------------------------------------------------------------------------
    def add_customer(
        self,
        company: Company,
        *,
        email: str | None = None,
        phone: str | None = None,
        location: Location | None = None,
    ) -> dict[str, Any]:
        rng = self.rng
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if email is None:
            pool = self.demo_emails
            if pool and rng.random() < 0.5:
                email = rng.choice(pool)
                phone = phone or self.demo_phone
            else:
                email = f"{first}.{last}.{rng.getrandbits(24):06x}@example.net".lower()
        demo = phone is not None and phone == self.demo_phone
        if phone is None:
            phone = fictional_phone(rng)
        stamp = iso(self.now())
        # consent as Shopmonkey records it (reference §3): most mobiles opted in, some
        # landlines, some never asked; a demo customer (this run's number, see below) always
        # opted in, so the demo shows SMS
        landline = not demo and rng.random() < 0.1
        opted = demo or (not landline and rng.random() < 0.8)
        record: dict[str, Any] = {
            "id": self._uuid(),
            "companyId": company.company_id,
            "locationIds": [(location or company.locations[0]).location_id],
            "customerType": "Customer",
            "firstName": first,
            "lastName": last,
            "email": None,
            "phone": None,
            "emails": [{"id": self._uuid(), "email": email, "primary": True, "subscribed": True}],
            "phoneNumbers": [
                {
                    "id": self._uuid(),
                    "number": phone,
                    "primary": True,
                    "type": "Landline" if landline else "Mobile",
                    "optIn": opted,
                    "optInVerifiedDate": stamp if opted else None,
                }
            ],
            "marketingOptIn": rng.random() < 0.7,
            "preferredContactMethod": rng.choice(["SMS", "Email", "All"]),
            "createdDate": stamp,
            "updatedDate": None if self.null_updated_on_insert else stamp,
            "meta": {"userId": self._uuid(), "sessionId": self._uuid(), "version": 1},
        }
        if demo:  # a mobile opted in to texts and marketing, no channel preferred: the gate
            # lets the demo's SMS and email both go (a `false` marketingOptIn would refuse the
            # SMS, a preference for one channel would skip the other)
            record["marketingOptIn"] = True
            record["preferredContactMethod"] = "All"
        company.customers[record["id"]] = record
        return record

    def update_customer(
        self, company: Company, customer_id: str, changes: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        record = company.customers[customer_id]
        consent = {k: changes.pop(k) for k in CONSENT_CHANGES if k in changes}
        if "email" in changes:
            record["emails"] = [
                {"id": self._uuid(), "email": changes.pop("email"), "primary": True}
            ]
            changes["emails"] = record["emails"]
        if "phone" in changes:
            record["phoneNumbers"] = [
                {"id": self._uuid(), "number": changes.pop("phone"), "primary": True}
            ]
            changes["phoneNumbers"] = record["phoneNumbers"]
        self._consent_changes(record, consent, changes)
        return self._touch(record, changes)

    def _consent_changes(
        self, record: dict[str, Any], consent: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        """`smsOptIn` / `phoneType` on every phone, `emailSubscribed` on every email,
        `marketingOptIn` / `preferredContactMethod` on the customer (a customer UPDATE)."""
        if "smsOptIn" in consent or "phoneType" in consent:
            for entry in record["phoneNumbers"]:
                if "smsOptIn" in consent:
                    entry["optIn"] = consent["smsOptIn"]
                    entry["optInVerifiedDate"] = iso(self.now()) if consent["smsOptIn"] else None
                if "phoneType" in consent:
                    entry["type"] = consent["phoneType"]
            changes["phoneNumbers"] = record["phoneNumbers"]
        if "emailSubscribed" in consent:
            for entry in record["emails"]:
                entry["subscribed"] = consent["emailSubscribed"]
            changes["emails"] = record["emails"]
        for key in ("marketingOptIn", "preferredContactMethod"):
            if key in consent:
                changes[key] = consent[key]

    # orders ---------------------------------------------------------------------------------
    def create_order(
        self,
        company: Company,
        *,
        customer_id: str | None = None,
        created_at: datetime | None = None,
        location: Location | None = None,
        email: str | None = None,
        consent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An estimate at `location` (default: the company's first) for `customer_id`, a new
        customer with `email`, or (neither given) a new or returning customer of the company;
        `consent` (`CONSENT_CHANGES`) is what a new customer's record says from the start."""
        rng = self.rng
        location = location or company.locations[0]
        if customer_id is None:
            if email is None and company.customers and rng.random() < 0.3:
                customer_id = rng.choice(list(company.customers))
            else:
                new = self.add_customer(company, email=email, location=location)
                customer_id = new["id"]
                if consent:
                    given = {k: v for k, v in consent.items() if k in CONSENT_CHANGES}
                    changes: dict[str, Any] = {}
                    self._consent_changes(new, given, changes)
                    new.update(changes)
        customer = company.customers[customer_id]
        if location.location_id not in customer["locationIds"]:
            customer["locationIds"].append(location.location_id)
        stamp = iso(created_at or self.now())
        number = str(1000 + len(company.orders) + 1)
        record: dict[str, Any] = {
            "id": self._uuid(),
            "publicId": f"{rng.getrandbits(40):010x}",
            "number": number,
            "companyId": company.company_id,
            "locationId": location.location_id,
            "customerId": customer_id,
            "vehicleId": self._uuid(),
            "status": "Estimate",
            "workflowStatusId": self._uuid(),
            "createdDate": stamp,
            "updatedDate": None if self.null_updated_on_insert else stamp,
            "orderCreatedDate": stamp,
            "totalCostCents": rng.randrange(5_000, 250_000),
            "paidCostCents": 0,
            "remainingCostCents": 0,
            "authorized": False,
            "invoiced": False,
            "paid": False,
            "archived": False,
            "deleted": False,
            "generatedCustomerName": f"{customer['firstName']} {customer['lastName']}",
            "generatedVehicleName": rng.choice(VEHICLES),
            "complaint": rng.choice(SERVICES),
            "meta": {"userId": self._uuid(), "sessionId": self._uuid(), "version": 1},
        }
        record["remainingCostCents"] = record["totalCostCents"]
        company.orders[record["id"]] = record
        self._add_services(company, record)
        return record

    # services (campaign_rng only) -------------------------------------------------------------
    def _add_services(self, company: Company, order: dict[str, Any]) -> None:
        """1–3 services splitting the order's total; on a returning customer's order, half the
        time one that revives a deferred service of an earlier order of theirs."""
        rng = self.campaign_rng
        names = rng.sample(SERVICES, rng.randint(1, 3))
        revived: dict[str, Any] | None = None
        deferred = [
            s for s in self._deferred.get(order["customerId"], []) if s["id"] not in self._revived
        ]
        if deferred and rng.random() < 0.5:
            revived = rng.choice(deferred)
            self._revived.add(revived["id"])
            names = [revived["name"], *(n for n in names if n != revived["name"])]
        weights = [rng.randint(1, 10) for _ in names]
        total = int(order["totalCostCents"])
        shares = [total * w // sum(weights) for w in weights]
        shares[0] += total - sum(shares)
        lines = []
        for index, (name, cents) in enumerate(zip(names, shares, strict=True)):
            back = revived if index == 0 else None
            lines.append(
                {
                    "id": self._campaign_uuid(),
                    "companyId": order["companyId"],
                    "locationId": order["locationId"],
                    "orderId": order["id"],
                    "name": name,
                    "ordinal": index + 1,
                    "authorizationStatus": "NotAuthorized",
                    "recommended": False,
                    "deferredReason": None,
                    "deferredDate": None,
                    "excludedFromDeferred": False,
                    "revived": back is not None,
                    "revivedFromId": back["id"] if back is not None else None,
                    "totalCents": cents,
                    "createdDate": order["createdDate"],
                    "updatedDate": order["updatedDate"],
                    "meta": {"version": 1},
                }
            )
        company.services[order["id"]] = lines
        if self.embed_services:
            order["services"] = lines

    def _service_step(
        self, company: Company, order: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        """What an order's step does to its services: authorizing decides each (about a third
        Declined, recommended for later; the first of a revived order authorized), invoicing
        defers the declined ones (`Declined`) and any still not authorized
        (`InvoicedNotAuthorized`); now and then the shop removes one from the deferred list."""
        rng = self.campaign_rng
        stamp = order["updatedDate"]
        for line in company.services.get(order["id"], []):
            before = (line["authorizationStatus"], line["deferredReason"])
            if changes.get("authorized") is True and line["authorizationStatus"] == "NotAuthorized":
                declined = not line["revived"] and rng.random() < 0.35
                line["authorizationStatus"] = "Declined" if declined else "Authorized"
                line["recommended"] = declined
            if changes.get("invoiced") is True and line["authorizationStatus"] != "Authorized":
                declined = line["authorizationStatus"] == "Declined"
                line["deferredReason"] = "Declined" if declined else "InvoicedNotAuthorized"
                line["deferredDate"] = stamp
                line["excludedFromDeferred"] = rng.random() < 0.15
                if not line["excludedFromDeferred"]:
                    self._deferred.setdefault(order["customerId"], []).append(line)
            if (line["authorizationStatus"], line["deferredReason"]) != before:
                line["updatedDate"] = stamp
                line["meta"]["version"] += 1

    # appointments (campaign_rng only) ---------------------------------------------------------
    def create_appointment(
        self,
        company: Company,
        order_id: str,
        *,
        start: datetime | None = None,
        send_reminder: bool | None = None,
        minutes: int = 60,
    ) -> dict[str, Any]:
        """An appointment for the order (its location, customer, vehicle): at `start` (default
        1–7 days ahead on the hour), Shopmonkey's own reminder on `send_reminder` (default about
        a third of them)."""
        rng = self.campaign_rng
        order = company.orders[order_id]
        now = self.now()
        if start is None:
            start = (now + timedelta(days=rng.randint(1, 7))).replace(
                hour=rng.randint(8, 16), minute=0, second=0, microsecond=0
            )
        if send_reminder is None:
            send_reminder = rng.random() < 0.3
        stamp = iso(now)
        record: dict[str, Any] = {
            "id": self._campaign_uuid(),
            "companyId": company.company_id,
            "locationId": order["locationId"],
            "orderId": order_id,
            "customerId": order["customerId"],
            "vehicleId": order["vehicleId"],
            "name": order.get("complaint") or "Appointment",
            "note": "",
            "allDay": False,
            "startDate": iso(start),
            "endDate": iso(start + timedelta(minutes=minutes)),
            "confirmed": False,
            "pendingConfirmation": True,
            "cancelationNote": None,
            "sendConfirmation": True,
            "sendReminder": send_reminder,
            "useEmail": True,
            "useSMS": True,
            "createdDate": stamp,
            "updatedDate": None if self.null_updated_on_insert else stamp,
            "meta": {"version": 1},
        }
        company.appointments[record["id"]] = record
        return record

    def move_appointment(
        self, company: Company, appointment_id: str, start: datetime
    ) -> tuple[dict[str, Any], list[str]]:
        """The appointment moved to `start` (its length kept)."""
        record = company.appointments[appointment_id]
        old_start = datetime.fromisoformat(record["startDate"])
        old_end = datetime.fromisoformat(record["endDate"])
        changes = {"startDate": iso(start), "endDate": iso(start + (old_end - old_start))}
        return self._touch(record, changes)

    def cancel_appointment(
        self, company: Company, appointment_id: str, note: str = "Cancelled by the customer"
    ) -> tuple[dict[str, Any], list[str]]:
        return self._touch(company.appointments[appointment_id], {"cancelationNote": note})

    def delete_appointment(self, company: Company, appointment_id: str) -> dict[str, Any]:
        record, _ = self._touch(company.appointments[appointment_id], {"deleted": True})
        return record

    def update_order(
        self, company: Company, order_id: str, changes: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        order, diff = self._touch(company.orders[order_id], changes)
        self._service_step(company, order, changes)
        return order, diff

    def advance_order(self, company: Company, order_id: str) -> tuple[dict[str, Any], list[str]]:
        """The next step of an order's life: authorized → RepairOrder → Invoice, paid."""
        order = company.orders[order_id]
        if not order["authorized"]:
            changes: dict[str, Any] = {"authorized": True}
        elif order["status"] == "Estimate":
            changes = {"status": "RepairOrder"}
        elif order["status"] == "RepairOrder":
            changes = {"status": "Invoice", "invoiced": True}
        else:
            changes = {"paid": True, "paidCostCents": order["totalCostCents"]}
        return self.update_order(company, order_id, changes)

    def delete_order(self, company: Company, order_id: str) -> dict[str, Any]:
        record, _ = self._touch(company.orders[order_id], {"deleted": True})
        return record

    def _touch(
        self, record: dict[str, Any], changes: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        record.update(changes)
        record["updatedDate"] = iso(self.now())
        record["meta"]["version"] = int(record["meta"]["version"]) + 1
        return record, [*changes, "updatedDate"]
