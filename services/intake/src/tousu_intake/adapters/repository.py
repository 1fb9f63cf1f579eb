"""Repositories of the intake schema: complaints (with their encrypted contacts and messages),
idempotency keys and classifier rule sets.

SQLAlchemy Core with statements built once: the write path is hot, and building a forty-column
insert per request cost more CPU than the database work. A complaint's fields map to the
columns of ``intake.complaint`` by name, so neither list is repeated here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from tousu_shared.db import HotStatement
from tousu_shared.errors import Conflict

from tousu_intake.adapters.crypto import FieldCipher
from tousu_intake.adapters.orm import (
    classifier_ruleset,
    complaint,
    complaint_contact,
    complaint_message,
    idempotency_key,
)
from tousu_intake.domain.commands import ComplaintCriteria
from tousu_intake.domain.complaint import (
    DETAIL_FIELDS,
    PII_FIELDS,
    Complaint,
    ComplaintDetails,
    Customer,
    CustomerKeys,
    Evidence,
    Message,
)
from tousu_intake.domain.idempotency import IdempotencyKey


@dataclass(frozen=True)
class ComplaintFilter(ComplaintCriteria):
    """A list's criteria as the repository applies them: the customer by blind index."""

    customer: CustomerKeys | None = None

    @classmethod
    def of(
        cls, criteria: ComplaintCriteria, *, department: str | None, customer: CustomerKeys | None
    ) -> ComplaintFilter:
        """``criteria`` (of a list query, say) with the department the caller may see."""
        given = {f.name: getattr(criteria, f.name) for f in dataclasses.fields(ComplaintCriteria)}
        return cls(**{**given, "department": department}, customer=customer)

    def equal_to(self) -> dict[str, Any]:
        """The columns the list is narrowed to one value of."""
        columns = ("channel", "category", "severity", "urgency", "status", "department")
        wanted = {name: getattr(self, name) for name in (*columns, "needs_review")}
        return {name: value for name, value in wanted.items() if value is not None}


# Where a page of a complaint list ends: its last complaint's received_at and id (newest first,
# so the next page holds the complaints before it).
KeysetPosition = tuple[datetime, uuid.UUID]


@dataclass(frozen=True)
class EarlierClaim:
    """A taken idempotency key: the request that took it and the answer it got."""

    request_hash: str
    answer: dict[str, Any]


class ComplaintRepository(Protocol):
    """Complaints, as the use cases see them (SQL here, in memory in the unit tests)."""

    async def add(self, complaint: Complaint) -> None: ...
    async def save(self, complaint: Complaint) -> None: ...
    async def get(
        self, complaint_id: uuid.UUID, *, for_update: bool = False
    ) -> Complaint | None: ...
    async def by_tracking_code(self, tracking_code: str) -> Complaint | None: ...
    async def of_customer(
        self, keys: CustomerKeys, *, for_update: bool = False
    ) -> list[Complaint]: ...
    async def departments_of(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str | None]: ...
    async def expired(self, *, received_before: datetime, limit: int) -> list[Complaint]: ...
    async def recent_of_customer(
        self, keys: CustomerKeys, *, since: datetime
    ) -> list[uuid.UUID]: ...
    async def find(
        self, filters: ComplaintFilter, *, after: KeysetPosition | None, limit: int
    ) -> list[Complaint]: ...
    async def contact(self, complaint: Complaint) -> Customer | None: ...
    async def messages(self, complaint_id: uuid.UUID) -> list[Message]: ...


class IdempotencyKeys(Protocol):
    """Claimed idempotency keys and the answers they were claimed with."""

    async def claim(
        self, key: IdempotencyKey, complaint_id: uuid.UUID, answer: dict[str, Any]
    ) -> EarlierClaim | None: ...


class RuleSets(Protocol):
    """Versions of the classifier's rules (version 0 is the shipped default, not stored)."""

    async def newest(self) -> tuple[int, dict[str, Any]] | None: ...
    async def add(self, rules: dict[str, Any], *, by: str, note: str | None) -> int: ...


# -- complaints -------------------------------------------------------------------------------

# The submitter's emotion has a column name of its own, apart from the classifier's.
_COLUMN_OF = {"emotion": "reported_emotion"}
_DETAIL_COLUMNS = {_COLUMN_OF.get(name, name): name for name in DETAIL_FIELDS}
# Copies of the effective classification, kept as columns for the list filters.
_EFFECTIVE = ("category", "severity", "urgency")
_STATE_COLUMNS = tuple(
    name for name in complaint.c.keys() if name not in _DETAIL_COLUMNS and name not in _EFFECTIVE
)

# A new complaint and its contact in one statement (one round trip): the contact row takes
# the complaint's id from the data-modifying CTE, and its foreign key is checked at the end
# of the statement, when the complaint row exists. Either both rows are written or neither.
_NEW_COMPLAINT = (
    complaint.insert()
    .values({column.name: sa.bindparam(column.name, type_=column.type) for column in complaint.c})
    .returning(complaint.c.id)
    .cte("new_complaint")
)
INSERT_COMPLAINT_WITH_CONTACT = (
    complaint_contact.insert()
    .add_cte(_NEW_COMPLAINT)
    .values(
        {
            "complaint_id": sa.select(_NEW_COMPLAINT.c.id).scalar_subquery(),
            **{
                column.name: sa.bindparam(f"contact_{column.name}", type_=column.type)
                for column in complaint_contact.c
                if column.name != "complaint_id"
            },
        }
    )
)
# Saving writes the whole row: every writer of a complaint holds its row lock first.
UPDATE_COMPLAINT = complaint.update().where(complaint.c.id == sa.bindparam("complaint_id"))
INSERT_MESSAGE = complaint_message.insert()
ERASE_CONTACT = (
    complaint_contact.update()
    .where(complaint_contact.c.complaint_id == sa.bindparam("erased_id"))
    .values(
        {
            name: None
            for name in (
                *(f"{f}_ct" for f in PII_FIELDS),
                "phone_index",
                "email_index",
                "preferred_contact",
            )
        }
    )
)
# An erased complaint's messages keep their evidence references (type, size, checksum, uri:
# what the evidence store needs to delete the files) but lose every text.
ERASE_MESSAGE_TEXT = (
    complaint_message.update()
    .where(complaint_message.c.complaint_id == sa.bindparam("erased_id"))
    .values(
        body=None,
        evidence=sa.text(
            "(SELECT coalesce(jsonb_agg(item - 'description'), '[]'::jsonb) "
            "FROM jsonb_array_elements(intake.complaint_message.evidence) AS item)"
        ),
    )
)
SELECT_COMPLAINT = sa.select(complaint).where(complaint.c.id == sa.bindparam("id"))
SELECT_COMPLAINT_FOR_UPDATE = SELECT_COMPLAINT.with_for_update()
SELECT_BY_TRACKING_CODE = sa.select(complaint).where(
    complaint.c.tracking_code == sa.bindparam("code")
)
SELECT_CONTACT = sa.select(complaint_contact).where(
    complaint_contact.c.complaint_id == sa.bindparam("id")
)
SELECT_MESSAGES = (
    sa.select(complaint_message)
    .where(complaint_message.c.complaint_id == sa.bindparam("id"))
    .order_by(complaint_message.c.added_at)
)
_SAME_CUSTOMER = sa.or_(
    complaint_contact.c.phone_index == sa.bindparam("phone_index"),
    complaint_contact.c.email_index == sa.bindparam("email_index"),
)
RECENT_COMPLAINTS = (
    sa.select(complaint.c.id)
    .join(complaint_contact, complaint_contact.c.complaint_id == complaint.c.id)
    .where(_SAME_CUSTOMER, complaint.c.received_at >= sa.bindparam("since"))
    .order_by(complaint.c.received_at.desc())
    .limit(50)
)
HOT_INSERT_COMPLAINT_WITH_CONTACT = HotStatement(INSERT_COMPLAINT_WITH_CONTACT)
HOT_RECENT_COMPLAINTS = HotStatement(RECENT_COMPLAINTS)
CUSTOMER_COMPLAINTS = (
    sa.select(complaint)
    .join(complaint_contact, complaint_contact.c.complaint_id == complaint.c.id)
    .where(_SAME_CUSTOMER)
    .order_by(complaint.c.received_at)
)
CUSTOMER_COMPLAINTS_FOR_UPDATE = CUSTOMER_COMPLAINTS.with_for_update(of=complaint)
DEPARTMENTS_OF = sa.select(complaint.c.id, complaint.c.department).where(
    complaint.c.id.in_(sa.bindparam("ids", expanding=True))
)
# Oldest first, skipping rows a use case holds (a later round takes them): two retention
# runs at once never take the same complaint, and an anonymised one is never taken again.
EXPIRED_COMPLAINTS = (
    sa.select(complaint)
    .where(complaint.c.received_at < sa.bindparam("before"), complaint.c.anonymized_at.is_(None))
    .order_by(complaint.c.received_at, complaint.c.id)
    .limit(sa.bindparam("batch"))
    .with_for_update(skip_locked=True)
)


def _row(item: Complaint) -> dict[str, Any]:
    row = {column: getattr(item.details, name) for column, name in _DETAIL_COLUMNS.items()}
    row.update({name: getattr(item, name) for name in (*_STATE_COLUMNS, *_EFFECTIVE)})
    return row


def _complaint(row: Row[Any]) -> Complaint:
    values = row._mapping
    details = ComplaintDetails(**{name: values[column] for column, name in _DETAIL_COLUMNS.items()})
    return Complaint(details=details, **{name: values[name] for name in _STATE_COLUMNS})


def _message_row(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "complaint_id": message.complaint_id,
        "channel": message.channel,
        "body": message.body,
        "evidence": [dataclasses.asdict(e) for e in message.evidence],
        "added_at": message.added_at,
        "added_by": message.added_by,
    }


class SqlComplaintRepository:
    """Complaints in ``intake``; contacts encrypted per field with the service's cipher."""

    def __init__(self, session: AsyncSession, cipher: FieldCipher) -> None:
        self._session = session
        self._cipher = cipher
        # Complaints locked in this transaction, so that loading one again returns the same
        # aggregate, and those saved but not yet written. A consumer applies a partition's
        # batch in one transaction, and a complaint's deadline events come together: they
        # now cost one read and one write instead of one of each per event. Unsaved changes
        # are written before any other statement of this repository and at commit.
        self._locked: dict[uuid.UUID, Complaint] = {}
        self._unsaved: dict[uuid.UUID, Complaint] = {}

    async def add(self, complaint: Complaint) -> None:
        """Insert a new complaint, its encrypted contact and the evidence sent with it."""
        customer, keys = complaint.customer, complaint.customer_keys
        if customer is None or keys is None:
            raise ValueError("a new complaint needs its customer")
        row_id = str(complaint.id)
        row = _row(complaint)
        row.update(
            {
                f"contact_{name}_ct": self._cipher.encrypt(
                    getattr(customer, name), row_id=row_id, field=name
                )
                for name in PII_FIELDS
            }
        )
        row["contact_key_id"] = self._cipher.active_key_id
        row["contact_phone_index"] = keys.phone
        row["contact_email_index"] = keys.email
        row["contact_preferred_contact"] = customer.preferred_contact
        await self._write_unsaved_first()
        await HOT_INSERT_COMPLAINT_WITH_CONTACT.execute(self._session, row)
        await self._add_messages(complaint)

    async def save(self, complaint: Complaint) -> None:
        """Store a loaded complaint's changes (it was loaded ``for_update``): written before
        this repository's next statement, or by :meth:`write_unsaved` at commit."""
        self._unsaved[complaint.id] = complaint

    async def write_unsaved(self) -> None:
        """Write the saved complaints' changes (the unit of work calls this at commit)."""
        unsaved, self._unsaved = list(self._unsaved.values()), {}
        for changed in unsaved:
            row = _row(changed)
            row["complaint_id"] = row.pop("id")
            await self._session.execute(UPDATE_COMPLAINT, row)
            await self._add_messages(changed)
            if changed.contact_erased:
                await self._session.execute(ERASE_CONTACT, {"erased_id": changed.id})
                await self._session.execute(ERASE_MESSAGE_TEXT, {"erased_id": changed.id})

    async def _execute(self, statement: Any, params: Any = None) -> Any:
        """A statement of this repository, after the unsaved changes it might read."""
        await self._write_unsaved_first()
        return await self._session.execute(statement, params)

    async def _write_unsaved_first(self) -> None:
        """Before a statement of this repository: the unsaved changes it might read."""
        if self._unsaved:
            await self.write_unsaved()

    def _lock_once(self, complaint: Complaint) -> Complaint:
        """The aggregate this transaction already holds for the row, else this one."""
        return self._locked.setdefault(complaint.id, complaint)

    async def _add_messages(self, complaint: Complaint) -> None:
        messages = complaint.take_new_messages()
        if messages:
            await self._session.execute(INSERT_MESSAGE, [_message_row(m) for m in messages])

    async def get(self, complaint_id: uuid.UUID, *, for_update: bool = False) -> Complaint | None:
        """One complaint; ``for_update`` holds its row lock until the transaction ends."""
        if for_update and complaint_id in self._locked:
            return self._locked[complaint_id]
        query = SELECT_COMPLAINT_FOR_UPDATE if for_update else SELECT_COMPLAINT
        row = (await self._execute(query, {"id": complaint_id})).first()
        if row is None:
            return None
        return self._lock_once(_complaint(row)) if for_update else _complaint(row)

    async def by_tracking_code(self, tracking_code: str) -> Complaint | None:
        """The complaint a customer's tracking code names."""
        row = (await self._execute(SELECT_BY_TRACKING_CODE, {"code": tracking_code})).first()
        return _complaint(row) if row is not None else None

    async def of_customer(self, keys: CustomerKeys, *, for_update: bool = False) -> list[Complaint]:
        """Every complaint of a customer (same phone or email), oldest first; ``for_update``
        locks them until the transaction ends."""
        query = CUSTOMER_COMPLAINTS_FOR_UPDATE if for_update else CUSTOMER_COMPLAINTS
        rows = await self._execute(query, {"phone_index": keys.phone, "email_index": keys.email})
        found = [_complaint(row) for row in rows]
        return [self._lock_once(c) for c in found] if for_update else found

    async def departments_of(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str | None]:
        """The department of each of these complaints (None: not routed yet)."""
        if not ids:
            return {}
        rows = await self._execute(DEPARTMENTS_OF, {"ids": list(ids)})
        return {row.id: row.department for row in rows}

    async def expired(self, *, received_before: datetime, limit: int) -> list[Complaint]:
        """Up to ``limit`` complaints received before a time and not anonymised yet, oldest
        first, locked (rows another transaction holds are skipped)."""
        rows = await self._execute(EXPIRED_COMPLAINTS, {"before": received_before, "batch": limit})
        return [self._lock_once(_complaint(row)) for row in rows]

    async def recent_of_customer(self, keys: CustomerKeys, *, since: datetime) -> list[uuid.UUID]:
        """Ids of the customer's complaints received since a time, newest first."""
        if not keys.findable:
            return []
        await self._write_unsaved_first()
        rows = await HOT_RECENT_COMPLAINTS.fetch(
            self._session, {"phone_index": keys.phone, "email_index": keys.email, "since": since}
        )
        return [row[0] for row in rows]

    async def find(
        self, filters: ComplaintFilter, *, after: KeysetPosition | None, limit: int
    ) -> list[Complaint]:
        """Complaints newest first, narrowed by the filters, after a keyset position."""
        query = sa.select(complaint)
        for column, value in filters.equal_to().items():
            query = query.where(complaint.c[column] == value)
        if filters.received_from is not None:
            query = query.where(complaint.c.received_at >= filters.received_from)
        if filters.received_to is not None:
            query = query.where(complaint.c.received_at < filters.received_to)
        if filters.customer is not None:
            same: list[sa.ColumnElement[bool]] = []
            if filters.customer.phone:
                same.append(complaint_contact.c.phone_index == filters.customer.phone)
            if filters.customer.email:
                same.append(complaint_contact.c.email_index == filters.customer.email)
            query = query.join(
                complaint_contact, complaint_contact.c.complaint_id == complaint.c.id
            ).where(sa.or_(*same))
        if after is not None:
            query = query.where(
                sa.tuple_(complaint.c.received_at, complaint.c.id) < sa.tuple_(*after)
            )
        query = query.order_by(complaint.c.received_at.desc(), complaint.c.id.desc()).limit(limit)
        return [_complaint(row) for row in await self._execute(query)]

    async def contact(self, complaint: Complaint) -> Customer | None:
        """The customer's contact details, decrypted (the caller audits the read)."""
        row = (await self._execute(SELECT_CONTACT, {"id": complaint.id})).first()
        if row is None:
            return None
        values = row._mapping
        clear = {
            name: self._cipher.decrypt(
                values[f"{name}_ct"], key_id=row.key_id, row_id=str(complaint.id), field=name
            )
            for name in PII_FIELDS
        }
        return Customer(
            preferred_contact=row.preferred_contact, tier=complaint.customer_tier, **clear
        )

    async def messages(self, complaint_id: uuid.UUID) -> list[Message]:
        """A complaint's messages, oldest first."""
        rows = await self._execute(SELECT_MESSAGES, {"id": complaint_id})
        return [
            Message(
                id=row.id,
                complaint_id=row.complaint_id,
                channel=row.channel,
                body=row.body,
                evidence=tuple(Evidence(**e) for e in row.evidence),
                added_at=row.added_at,
                added_by=row.added_by,
            )
            for row in rows
        ]


# -- idempotency keys --------------------------------------------------------------------------

_CLAIM = pg_insert(idempotency_key)
CLAIM_KEY = _CLAIM.on_conflict_do_nothing().returning(idempotency_key.c.key)
# An automatic key only guards its window; an older claim is taken over.
CLAIM_EXPIRED_OR_NEW_KEY = _CLAIM.on_conflict_do_update(
    index_elements=[idempotency_key.c.credential, idempotency_key.c.key],
    set_={
        name: _CLAIM.excluded[name]
        for name in ("request_hash", "complaint_id", "response", "created_at")
    },
    where=idempotency_key.c.created_at < sa.bindparam("reuse_before"),
).returning(idempotency_key.c.key)
_CLAIMED = ("credential", "key", "request_hash", "complaint_id", "response")
HOT_CLAIM_KEY = HotStatement(CLAIM_KEY, columns=_CLAIMED)
HOT_CLAIM_EXPIRED_OR_NEW_KEY = HotStatement(CLAIM_EXPIRED_OR_NEW_KEY, columns=_CLAIMED)
SELECT_CLAIM = sa.select(idempotency_key.c.request_hash, idempotency_key.c.response).where(
    idempotency_key.c.credential == sa.bindparam("credential"),
    idempotency_key.c.key == sa.bindparam("key"),
)


class SqlIdempotencyKeys:
    """Keys claimed with one upsert; concurrent claims of one key wait for the first."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(
        self, key: IdempotencyKey, complaint_id: uuid.UUID, answer: dict[str, Any]
    ) -> EarlierClaim | None:
        """Take the key with this answer, or return the claim that holds it."""
        row: dict[str, Any] = {
            "credential": key.credential,
            "key": key.key,
            "request_hash": key.request_hash,
            "complaint_id": complaint_id,
            "response": answer,
        }
        if key.reusable_before is not None:
            row["reuse_before"] = key.reusable_before
            claimed = await HOT_CLAIM_EXPIRED_OR_NEW_KEY.fetch(self._session, row)
        else:
            claimed = await HOT_CLAIM_KEY.fetch(self._session, row)
        if claimed:
            return None
        held = (
            await self._session.execute(
                SELECT_CLAIM, {"credential": key.credential, "key": key.key}
            )
        ).one()
        return EarlierClaim(held.request_hash, held.response)


# -- classifier rule sets ----------------------------------------------------------------------

NEWEST_RULES = (
    sa.select(classifier_ruleset.c.version, classifier_ruleset.c.rules)
    .order_by(classifier_ruleset.c.version.desc())
    .limit(1)
)
LATEST_VERSION = sa.select(sa.func.coalesce(sa.func.max(classifier_ruleset.c.version), 0))


class SqlRuleSets:
    """Classifier rule sets, one row per version."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def newest(self) -> tuple[int, dict[str, Any]] | None:
        """The newest stored version and its rules (None: only the shipped defaults)."""
        row = (await self._session.execute(NEWEST_RULES)).first()
        return (row.version, row.rules) if row is not None else None

    async def add(self, rules: dict[str, Any], *, by: str, note: str | None) -> int:
        """Store the next version; two saves at once: the second is refused."""
        version = int((await self._session.execute(LATEST_VERSION)).scalar_one()) + 1
        try:
            await self._session.execute(
                classifier_ruleset.insert().values(
                    version=version, rules=rules, created_by=by, note=note
                )
            )
        except IntegrityError as exc:
            raise Conflict(
                "another rule set was saved at the same time; retry", field="rules"
            ) from exc
        return version
