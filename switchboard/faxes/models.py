"""API schemas of faxes."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

from sip.fax.models import STATE_NAMES, FaxState
from sip.fax.service import RESULT_NAMES


class FaxOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    batch_id: str | None
    direction: str
    state: str
    incident_id: str | None
    number: str
    local_number: str
    party_name: str
    contact_id: str | None
    remote_station: str
    document_name: str
    pages_total: int
    pages: int
    rate: int | None
    ecm: bool | None
    mode: str
    result: str
    error: str
    attempts: int
    history: list[dict[str, Any]]
    recording_id: str | None
    created_by: str
    created_at: datetime
    ended_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def state_name(self) -> str:
        return STATE_NAMES[FaxState(self.state)]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def result_name(self) -> str:
        """The outcome in Chinese (empty while none)."""
        return RESULT_NAMES.get(self.result, self.result)


class BatchOut(BaseModel):
    batch_id: str
    pages: int
    faxes: list[FaxOut]
    skipped: list[dict[str, str]]  # recipients named but without a fax number: {"name", "reason"}
