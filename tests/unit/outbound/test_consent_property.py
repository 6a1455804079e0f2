"""Property: over any sequence of consent changes at the source (arriving in any order, fields
present or absent, from Shopmonkey or a website form) interleaved with SMS touch points, the
real gate (`decide`, on what `merge` stores, as the SQL upsert does) never allows an SMS the
contact has not consented to.

The oracle does not call `merge` or the gate: it replays the changes that were not older than
the newest one seen so far and says the contact consented when, for the flags `optIn` /
`consentSms` and `marketingOptIn`, some change said True, none said False since then
(absence lifts nothing), and the newest change that spoke of that flag was not absence after a
True. A landline, once said and not taken back, also forbids it, and so does a preference for
email, once said and not taken back, while email may go to the customer (the address is not
unsubscribed and its record does not ask for SMS).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord, merge
from services.outbound.domain.safety_gate import GateInput, TenantGateView, decide
from tests.unit.outbound.support import OPEN_NOW, PHONE, WHITELISTED, tenant_profile

TENANT = TenantGateView(active=True, policy=tenant_profile().policy, has_postal_address=True)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FLAG = st.sampled_from([None, True, False])

change = st.builds(
    lambda minutes, source, opted, marketing, line, preferred: ConsentRecord(
        Channel.SMS,
        PHONE,
        source,
        T0 + timedelta(minutes=minutes),
        f"{source}:{minutes}",
        opted_in=opted,
        marketing_opt_in=marketing,
        line_type=line,
        preferred=preferred,
    ),
    st.integers(0, 50),
    st.sampled_from(["shopmonkey", "website"]),
    FLAG,
    FLAG,
    st.sampled_from([None, "mobile", "landline", "voip"]),
    st.sampled_from([None, "sms", "email"]),
)
#: a step is a consent change or (None) an SMS touch point
steps = st.lists(st.one_of(change, st.none()), min_size=1, max_size=30)
#: what the source holds for the same customer's address (its `subscribed`), if anything
email_record = st.one_of(
    st.none(),
    st.builds(
        lambda subscribed, preferred: ConsentRecord(
            Channel.EMAIL,
            WHITELISTED,
            "shopmonkey",
            T0,
            "e",
            opted_in=subscribed,
            preferred=preferred,
        ),
        FLAG,
        st.sampled_from([None, "sms", "email"]),
    ),
)


def flag_allows(values: list[bool | None]) -> tuple[bool, bool]:
    """(some True is in force, a False is in force) over one flag's effective history."""
    in_force: bool | None = None
    for value in values:
        if value is True:
            in_force = True
        elif value is False:
            in_force = False
        elif in_force is True:  # absence after a True: the True is gone
            in_force = None
    return in_force is True, in_force is False


def last_said(values: list[str | None]) -> str | None:
    said = [v for v in values if v is not None]
    return said[-1] if said else None


def oracle_consented(applied: list[ConsentRecord], email: ConsentRecord | None) -> bool:
    if not applied:
        return False
    yes_phone, no_phone = flag_allows([c.opted_in for c in applied])
    yes_mkt, no_mkt = flag_allows([c.marketing_opt_in for c in applied])
    if no_phone or no_mkt or not (yes_phone or yes_mkt):
        return False
    if last_said([c.line_type for c in applied]) == "landline":
        return False
    if last_said([c.preferred for c in applied]) != "email":
        return True
    # prefers email: the SMS gives way only when email may go (not unsubscribed) and the
    # address's record does not ask for SMS
    email_open = email is None or email.opted_in is not False
    return not email_open or (email is not None and email.preferred == "sms")


@settings(max_examples=600, deadline=None)
@given(steps, email_record)
def test_no_sms_without_recorded_consent(
    sequence: list[ConsentRecord | None], email: ConsentRecord | None
) -> None:
    stored: ConsentRecord | None = None
    applied: list[ConsentRecord] = []  # changes not older than the newest seen
    for step in sequence:
        if step is not None:
            stored = merge(stored, step)
            if not applied or step.changed_at >= max(c.changed_at for c in applied):
                applied.append(step)
            continue
        decision = decide(
            GateInput(
                channel=Channel.SMS,
                email=WHITELISTED,
                phone=PHONE,
                whitelist=frozenset({WHITELISTED}),
                email_configured=True,
                sms_configured=True,
                tenant=TENANT,
                now=OPEN_NOW,
                phone_whitelist=frozenset({PHONE}),
                consent=stored,
                other_consent=email,
            )
        )
        if decision.allowed:
            assert oracle_consented(applied, email), (decision, stored, applied)
        else:  # and nothing consented is refused on consent grounds
            assert not oracle_consented(applied, email), (decision, stored, applied)
            assert decision.reason in ("sms_no_consent", "landline", "contact_preference")
