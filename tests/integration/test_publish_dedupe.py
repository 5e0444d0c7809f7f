"""Deduplication inside one group-committed batch, including an awkward edge."""

from __future__ import annotations

import uuid

from amebo.publishing import Publication, publish_in
from tests.support.api import Api


async def test_a_deduper_that_spells_another_events_id_is_still_its_own_event(api: Api) -> None:
    auth = await api.register_application("shop")
    await api.register_action(auth, "shop", "orders.v1.placed")
    first = uuid.uuid4()
    batch = [
        Publication("orders.v1.placed", "shop", {"n": 1}, id=first),
        Publication("orders.v1.placed", "shop", {"n": 2}, deduper=str(first)),
        Publication("orders.v1.placed", "shop", {"n": 3}, deduper=str(first)),
    ]
    async with api.runtime.pool.connection() as conn, conn.transaction():
        published = (await publish_in(conn, batch)).events
    assert published[0].id == first and published[0].created
    assert published[1].id != first and published[1].created
    assert published[2].id == published[1].id and not published[2].created
